"""``--precision``: the numeric precision a model trains in (float32, or bfloat16 as Keras'
``mixed_bfloat16``), and ``auto``'s choice between them by measurement on this machine.

``auto`` times the task's model in both precisions on real training batches, alternating them, and
keeps bfloat16 only where it trained at least `MARGIN` times as fast; where the processor has no
bfloat16 support it never tries it. The choice, both rates and the reason go into the run's
plan.json, metrics.json and log. Whatever a model trained in, its saved copy is float32
(`saved_copy`), so the export and the server never see bfloat16.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
from collections.abc import Callable, Iterator
from pathlib import Path

from training.task_config import PRECISIONS

log = logging.getLogger("training")

# Keras' dtype policy for each precision: bfloat16 computes in bfloat16 and keeps float32 weights.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# bfloat16 is kept only at this speed-up or more: below it, the float32 run's accuracy is worth more.
MARGIN = 1.15
# Rounds of the alternated timing: each precision is timed this many times and its best rate kept
# (a shared machine only ever slows a measurement down).
ROUNDS = 2
# The CPU flags of native bfloat16 arithmetic (x86: AVX512-BF16 or AMX; Arm: BF16).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclasses.dataclass(frozen=True)
class Choice:
    """A run's precision, why, and the training images/s measured for it (empty when not measured)."""

    precision: str
    reason: str
    rates: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"precision": self.precision, "precision_reason": self.reason, "precision_rates": {k: round(v, 1) for k, v in self.rates.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Choice:
        return cls(data["precision"], data["precision_reason"], dict(data.get("precision_rates", {})))


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def bfloat16_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[bool, str]:
    """Whether this machine computes bfloat16 natively (an accelerator, or a CPU flag), and what says so."""
    try:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return True, "a GPU is present"
    except ImportError:  # pragma: no cover - training always has TensorFlow
        pass
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False, f"{cpuinfo} is unreadable ({platform.machine()}), so bfloat16 support is unknown"
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    found = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if found:
        return True, f"the CPU has {', '.join(found)}"
    return False, f"the CPU has none of {', '.join(BF16_CPU_FLAGS)}"


def choose(rates: dict[str, float], margin: float = MARGIN) -> Choice:
    """bfloat16 where it trained at least ``margin`` times as fast as float32, else float32."""
    speedup = rates["bfloat16"] / rates["float32"]
    if speedup >= margin:
        return Choice("bfloat16", f"auto: bfloat16 trained {speedup:.2f}x as fast as float32 (>= {margin}x)", rates)
    return Choice("float32", f"auto: bfloat16 trained {speedup:.2f}x as fast as float32 (< {margin}x), float32 kept", rates)


def resolve(precision: str, time_in: Callable[[str], float], support: tuple[bool, str] | None = None, rounds: int = ROUNDS) -> Choice:
    """The run's precision: ``precision`` itself unless it is ``auto``; for ``auto``, ``time_in``
    (training images/s of the task's model built in a precision) is called for float32 and bfloat16
    alternately, ``rounds`` times each, and `choose` decides on the best rate of each."""
    check(precision)
    if precision != "auto":
        return Choice(precision, f"{precision} was asked for")
    supported, why = support if support is not None else bfloat16_support()
    if not supported:
        choice = Choice("float32", f"auto: bfloat16 not tried: {why}")
        log.info("precision: %s (%s)", choice.precision, choice.reason)
        return choice
    rates: dict[str, float] = {}
    for round_index in range(rounds):
        order = ("float32", "bfloat16") if round_index % 2 == 0 else ("bfloat16", "float32")
        for name in order:
            rates[name] = max(rates.get(name, 0.0), time_in(name))
    choice = choose(rates)
    log.info("precision: %s (float32 %.0f, bfloat16 %.0f training images/s; %s)", choice.precision, rates["float32"], rates["bfloat16"], why)
    return choice


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Builds inside the block get ``precision``'s Keras dtype policy; the previous one comes back after."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def of_model(model) -> str:
    """The precision ``model`` computes in: bfloat16 if any of its layers does."""
    for layer in _layers(model):
        if getattr(layer, "compute_dtype", "float32") == "bfloat16":
            return "bfloat16"
    return "float32"


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # A nested model (AutoKeras' best model inside its wrapper).
            yield from _layers(layer)


def saved_copy(model):
    """The model a run saves: ``model`` itself if it computes in float32 with Keras' own layers;
    else a copy with the same weights in float32 (mixed precision keeps float32 variables, so they
    carry over exactly) whose fused batch norms are Keras' own (`training.models.batch_norm`)."""
    import keras

    from training.models.batch_norm import BatchNormalization

    if of_model(model) == "float32" and not any(isinstance(layer, BatchNormalization) for layer in _layers(model)):
        return model

    def clone(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone)
        config = layer.get_config()
        config["dtype"] = "float32"
        stock = keras.layers.BatchNormalization if isinstance(layer, BatchNormalization) else type(layer)
        return stock.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
