"""The int8 export's choice: every configuration is tried and recorded, the fastest within the
accuracy limit is kept, and when none is within it the card says why and no variant is written.
On the tiny ONNX model (`tests/tiny_model.py`); a speed-up is not asserted: on so small a model int8
is slower (measured 0.56x at batch 1)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_model import write_version
from training.export import quantize


@pytest.fixture
def tiny(tmp_path):
    from training.export.onnx_model import run, session

    path, _ = write_version(tmp_path / "version")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, (96, 8, 8, 3)).astype(np.float32)  # Dim noise, and one bright colour each:
    images[np.arange(96), ..., np.arange(96) % 3] += 180  # a clear answer, which int8 keeps.
    labels = run(session(path / "model.onnx"), images).argmax(axis=1)
    return path, images, labels


def test_every_configuration_is_recorded_and_the_fastest_usable_one_kept(tiny, tmp_path):
    path, images, labels = tiny
    section = quantize.build(path / "model.onnx", tmp_path, images, images, labels)
    tried = section["configurations"]
    assert [entry["configuration"] for entry in tried] == [configuration.name for configuration in quantize.CONFIGURATIONS]
    usable = [entry for entry in tried if entry["usable"]]
    assert usable and section["usable"] and (tmp_path / quantize.INT8_FILE).is_file()
    assert section["configuration"] == quantize.choose(tried)["configuration"]
    assert all(entry["validation_images"] == 96 and entry["method"].startswith("static QDQ") for entry in tried)


def test_when_no_configuration_keeps_accuracy_the_card_says_why_and_nothing_is_written(tiny, tmp_path, monkeypatch):
    path, images, labels = tiny
    monkeypatch.setattr(quantize, "MAX_ACCURACY_DROP_POINTS", -1.0)  # No drop is within it.
    two = quantize.CONFIGURATIONS[:2]
    section = quantize.build(path / "model.onnx", tmp_path, images, images, labels, configurations=two)
    assert not section["usable"] and "every configuration lost more than -1.0 points" in section["reason"]
    assert len(section["configurations"]) == 2 and "file" not in section and not (tmp_path / quantize.INT8_FILE).exists()


def test_the_fastest_wins_and_within_five_percent_of_it_the_most_accurate():
    def figures(name, speedup, drop, usable=True):
        return {"configuration": name, "speedup": {"batch1": speedup}, "accuracy_drop_points": drop, "usable": usable}

    tried = [figures("a", 2.65, 0.18), figures("b", 2.62, 0.12), figures("c", 2.48, 0.0), figures("d", 3.5, 0.9, usable=False)]
    assert quantize.choose(tried)["configuration"] == "b"  # Within 5% of a, and more accurate; c is slower; d loses too much.
    assert quantize.choose([figures("a", 2.0, 0.2), figures("b", 3.0, 0.3)])["configuration"] == "b"
    assert quantize.choose([figures("d", 3.5, 0.9, usable=False)]) is None
