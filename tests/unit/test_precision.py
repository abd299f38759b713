"""--precision's parts: auto's choice from injected timings (no sleeping), the CPU check, the
float32 copy of a bfloat16 model, the command line's refusal, and the plan that records it. A
real bfloat16 run of the demo against float32: tests/integration/test_precision.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from training import budget, precision
from training.__main__ import main

SUPPORTED = (True, "the CPU has amx_bf16")


def timings(rates: dict[str, list[float]]):
    """A ``time_in`` that returns the given rates in turn, recording the order it was called in."""
    calls: list[str] = []

    def time_in(name: str) -> float:
        calls.append(name)
        return rates[name][sum(1 for c in calls if c == name) - 1]

    return time_in, calls


def test_auto_keeps_bfloat16_only_at_the_margin_or_more():
    time_in, calls = timings({"float32": [500.0, 520.0], "bfloat16": [800.0, 790.0]})
    choice = precision.resolve("auto", time_in, SUPPORTED)
    assert choice.precision == "bfloat16" and choice.rates == {"float32": 520.0, "bfloat16": 800.0}
    assert calls == ["float32", "bfloat16", "bfloat16", "float32"]  # Alternated, each timed twice, the best kept.
    assert "1.54x" in choice.reason


def test_auto_falls_back_to_float32_when_the_probe_says_so():
    time_in, _ = timings({"float32": [400.0, 380.0], "bfloat16": [440.0, 450.0]})  # 1.125x: below the margin.
    choice = precision.resolve("auto", time_in, SUPPORTED)
    assert choice.precision == "float32" and "< 1.15x" in choice.reason
    slower, _ = timings({"float32": [400.0, 400.0], "bfloat16": [80.0, 80.0]})  # What an older note claimed.
    assert precision.resolve("auto", slower, SUPPORTED).precision == "float32"


def test_auto_never_tries_bfloat16_without_support(caplog):
    def time_in(name):
        raise AssertionError(f"timed {name} on a CPU without bfloat16")

    with caplog.at_level("INFO", logger="training"):
        choice = precision.resolve("auto", time_in, (False, "the CPU has none of avx512_bf16, amx_bf16, bf16"))
    assert choice.precision == "float32" and "not tried" in choice.reason and choice.rates == {}
    # The training log says what auto chose and why, as it does when it times both.
    assert "precision: float32 (auto: bfloat16 not tried: the CPU has none of avx512_bf16, amx_bf16, bf16)" in caplog.text


def test_an_explicit_precision_is_not_timed():
    def time_in(name):
        raise AssertionError("timed an explicit precision")

    assert precision.resolve("bfloat16", time_in, SUPPORTED).precision == "bfloat16"
    assert precision.resolve("float32", time_in, SUPPORTED).precision == "float32"
    with pytest.raises(ValueError, match="--precision must be one of auto, float32, bfloat16, got 'fp16'"):
        precision.resolve("fp16", time_in, SUPPORTED)


def test_the_cpu_check_reads_the_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    supported, why = precision.bfloat16_support(cpuinfo)
    assert not supported and "none of" in why
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.bfloat16_support(cpuinfo) == (True, "the CPU has avx512_bf16, amx_bf16")
    assert precision.bfloat16_support(tmp_path / "missing")[0] is False


def test_a_bfloat16_model_is_saved_as_an_exact_saved_copy():
    import keras

    with precision.policy("bfloat16"):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax", dtype="float32")(x))
    assert keras.config.dtype_policy().name == "float32"  # The policy came back after the block.
    assert precision.of_model(model) == "bfloat16"
    copy = precision.saved_copy(model)
    assert precision.of_model(copy) == "float32"
    for original, copied in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(original, copied)
    # The weights are equal (above); the answers agree within what bfloat16's 8-bit mantissa allows
    # on inputs of moderate size (0-255 pixels into an untrained network give saturated logits,
    # where bfloat16 rounding moved a probability by 0.04).
    pixels = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=0.05)
    assert precision.saved_copy(copy) is copy


def test_the_command_refuses_an_unknown_precision(capsys, tmp_path):
    assert main(["train", "demo", "--precision", "half", "--run-dir", str(tmp_path / "run")]) == 2
    assert "--precision must be one of auto, float32, bfloat16, got 'half'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_plan_records_the_precision_and_an_older_plan_still_loads(tmp_path):
    plan = budget.Plan(1800, 12, 1, 760.0, 140.0, 80.0, "bfloat16", {"float32": 520.0, "bfloat16": 760.0}, "auto: bfloat16 trained 1.46x")
    plan.save(tmp_path / "plan.json")
    assert budget.Plan.load(tmp_path / "plan.json") == plan
    older = {key: value for key, value in plan.to_json().items() if not key.startswith("precision")}
    assert budget.Plan.from_json(older).precision == "float32" and budget.Plan.from_json(older).precision_reason == ""


@pytest.mark.slow
def test_importing_training_turns_onednn_on_before_tensorflow_loads_and_keeps_the_users_choice():
    import platform
    import subprocess
    import sys

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the oneDNN default is set on x86-64 only")
    probe = "import training; from tensorflow.python.util import _pywrap_util_port as port; print(port.IsMklEnabled())"
    environment = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    for value, expected in ((None, "True"), ("0", "False")):
        env = environment if value is None else {**environment, "TF_ENABLE_ONEDNN_OPTS": value}
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split()[-1] == expected, (value, result.stdout)
