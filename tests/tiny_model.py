"""A real, tiny ONNX classifier written in a test's folder as an exported version would be, for the
in-process serving tests: no training, no TensorFlow, no `bentoml serve`.

The model averages each colour channel and scores class c by ``10 * mean(channel c) / 255``
through a softmax, so a red picture is class 0 (``red``), a green one class 1, a blue one class 2.
`region_onnx_bytes` builds the same model looking only at one rectangle of its input.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from training.interface import monitoring
from training.interface.contract import CLASSIFY_INPUT, CLASSIFY_SIGNATURE, INPUT_NAME, OUTPUT_NAME, SERVING_SIGNATURE

LABELS = ["red", "green", "blue"]
NAMES = ["the colour red", "the colour green", "the colour blue"]
SIZE = (8, 8)


def onnx_bytes(size: tuple[int, int] = SIZE, region: tuple[slice, slice] | None = None) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    weights = np.eye(3, dtype=np.float32) * (10 / 255)
    initializers = [helper.make_tensor("weights", TensorProto.FLOAT, weights.shape, weights.reshape(-1))]
    pixels, crop = INPUT_NAME, []
    if region is not None:  # Only the pixels [rows, cols] of the input reach the model's answer.
        rows, cols = region
        starts, ends = [rows.start, cols.start], [rows.stop, cols.stop]
        bounds = (("starts", starts), ("ends", ends), ("axes", [1, 2]))
        initializers += [helper.make_tensor(name, TensorProto.INT64, [2], value) for name, value in bounds]
        crop, pixels = [helper.make_node("Slice", [INPUT_NAME, "starts", "ends", "axes"], ["region"])], "region"
    graph = helper.make_graph(
        [
            *crop,
            helper.make_node("ReduceMean", [pixels], ["means"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["means", "weights"], ["scores"]),
            helper.make_node("Softmax", ["scores"], [OUTPUT_NAME], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", *size, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _tensor(dtype: str, dims: list[int], name: str) -> dict:
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False}, "name": name}


def write_version(folder: Path, size: tuple[int, int] = SIZE, region: tuple[slice, slice] | None = None) -> tuple[Path, dict]:
    """Writes ``model.onnx``, ``labels.json`` and returns (folder, card), as the export would."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_bytes(size, region))
    (folder / "labels.json").write_text(json.dumps({"class_ids": LABELS, "class_names": NAMES}))
    k = len(LABELS)
    card = {
        "model_name": "tiny",
        "input_size": list(size),
        "task": {"name": "tiny"},
        "dataset": {"source": "colours"},
        "preprocessing": {"decode": "Pillow", "resize": "bilinear"},
        "metrics": {"val_top1": 1.0},
        # Its "validation images": as many red, green and blue pictures, each answered with certainty.
        "reference": monitoring.reference(np.eye(3)[[0, 1, 2] * 10], "colours"),
        "artifacts": {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("model.onnx", "labels.json")},
        "signature_defs": {
            SERVING_SIGNATURE: {
                "inputs": {INPUT_NAME: _tensor("DT_FLOAT", [-1, *size, 3], "serving_default_pixels:0")},
                "outputs": {OUTPUT_NAME: _tensor("DT_FLOAT", [-1, k], "StatefulPartitionedCall:0")},
                "method_name": "tensorflow/serving/predict",
            },
            CLASSIFY_SIGNATURE: {
                "inputs": {CLASSIFY_INPUT: _tensor("DT_STRING", [-1], "classify_images:0")},
                "outputs": {"score": _tensor("DT_FLOAT", [-1, k], "StatefulPartitionedCall_1:3")},
                "method_name": "tensorflow/serving/predict",
            },
        },
    }
    return folder, card


def solid(colour: int, size: tuple[int, int] = (20, 30)) -> np.ndarray:
    """A picture of one pure colour (0 red, 1 green, 2 blue), uint8 RGB."""
    picture = np.zeros((*size, 3), np.uint8)
    picture[..., colour] = 255
    return picture
