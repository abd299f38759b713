"""The service serves a model's int8 variant only where the card says it is usable and the file is
there, says so in the model's metadata, and serves the float model when asked to (the setting)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from serving.core.repository import load_version
from serving.core.settings import Settings
from tests.tiny_model import write_version


@pytest.fixture
def tiny_with_int8(tmp_path):
    from training.export.quantize import INT8_FILE, quantize

    path, card = write_version(tmp_path / "tiny" / "1")
    calibration = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3)).astype(np.float32)
    quantize(path / "model.onnx", path / INT8_FILE, calibration)
    card["artifacts"][INT8_FILE] = hashlib.sha256((path / INT8_FILE).read_bytes()).hexdigest()
    return path, card


@pytest.mark.parametrize(
    "usable,prefer,runtime",
    [(True, True, "onnxruntime-int8"), (True, False, "onnxruntime"), (False, True, "onnxruntime")],
)
def test_the_int8_variant_serves_only_where_usable_and_preferred(tiny_with_int8, usable, prefer, runtime):
    path, card = tiny_with_int8
    card["int8"] = {"file": "model.int8.onnx", "usable": usable}
    model = load_version("tiny", 1, path, card, Settings(prefer_int8=prefer))
    assert model.runtime == runtime and model.describe()["runtime"] == runtime
    red = np.zeros((1, 8, 8, 3), np.float32)
    red[..., 0] = 255
    assert model.predict(red, False).argmax() == 0  # Both variants answer the same class.


def test_an_unusable_variant_without_its_file_serves_the_float_model(tmp_path):
    path, card = write_version(tmp_path / "tiny" / "1")
    card["int8"] = {"usable": False, "reason": "every configuration lost more than 0.3 points of top-1"}
    assert load_version("tiny", 1, path, card, Settings(prefer_int8=True)).runtime == "onnxruntime"
