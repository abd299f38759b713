"""The model card: what an exported model is, how it was made, how to feed it, and its checksums.

Written as ``model_card.json`` beside the artifacts and stored as the BentoML model's metadata.
"""

from __future__ import annotations

import datetime
import hashlib
import sys
from pathlib import Path

from training.interface.contract import INPUT_NAME, OUTPUT_NAME
from training.interface.preprocessing import DECODE_SEMANTICS, RESIZE_SEMANTICS

CARD_FILE = "model_card.json"
CARD_FORMAT = "imgclf-model-card/1"
METRIC_KEYS = ("val_top1", "val_top5", "validation_images", "epochs_completed", "training_images", "skipped_images")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (except the card), by relative path."""
    return {str(path.relative_to(folder)): sha256(path) for path in sorted(folder.rglob("*")) if path.is_file() and path.name != CARD_FILE}


def normalization(model) -> str:
    """The model's own input normalisation, read from its first normalising layer."""
    import keras

    def flattened(layers):
        for layer in layers:
            yield layer
            yield from flattened(getattr(layer, "layers", []))

    for layer in flattened(model.layers):
        if isinstance(layer, keras.layers.Rescaling):
            return f"inside the model: Rescaling(scale={layer.scale:.6g}, offset={layer.offset:.6g}) (layer '{layer.name}')"
        if isinstance(layer, keras.layers.Normalization):
            return f"inside the model: per-channel Normalization with adapted mean and variance (layer '{layer.name}')"
    return "none: the model takes raw 0-255 pixels"


def versions() -> dict[str, str]:
    import keras
    import numpy
    import onnx
    import onnxruntime
    import PIL
    import tensorflow
    import tf2onnx

    return {
        "python": sys.version.split()[0],
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }


def build(
    *, name: str, run_config: dict, labels: dict, metrics: dict, model, parity: dict, onnx_info: dict, signature_defs: dict, extra: dict | None = None
) -> dict:
    """The card, without version, export time and artifact hashes (`finish` adds those)."""
    task = run_config["task"]
    height, width = (int(v) for v in model.inputs[0].shape[1:3])
    classes = len(labels["class_ids"])
    return {
        "format": CARD_FORMAT,
        "model_name": name,
        "task": {"name": task["name"], "title": task["title"], "architecture": task["architecture"], "preset": run_config.get("preset")},
        "dataset": {"source": task["dataset"], "classes": classes, "training_images": metrics.get("training_images")},
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [-1, height, width, 3], "layout": "NHWC", "color": "RGB", "range": [0, 255]},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [-1, classes]},
        "input_size": [height, width],
        "preprocessing": {"decode": DECODE_SEMANTICS, "resize": RESIZE_SEMANTICS, "normalization": normalization(model)},
        "labels": {"count": classes, "file": "assets/labels.txt", "names_file": "assets/names.txt", "json": "labels.json"},
        # The SavedModel's signatures as written (TensorFlow Serving's metadata form): what the
        # service answers to a TF Serving metadata request.
        "signature_defs": signature_defs,
        "onnx": onnx_info,
        "metrics": {key: metrics[key] for key in METRIC_KEYS if key in metrics},
        "training": {
            "seconds": metrics.get("train_seconds"),
            "images_per_second": metrics.get("images_per_second"),
            "parameters": metrics.get("parameters"),
            "trainable_parameters": metrics.get("trainable_parameters"),
            "started": run_config.get("started"),
        },
        "parity": parity,
        "framework_versions": versions(),
        **(extra or {}),
    }


def without_nulls(value):
    """The card with null entries dropped (BentoML metadata refuses None)."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value if item is not None]
    return value


def finish(card: dict, version: int, folder: Path) -> dict:
    exported = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return without_nulls({**card, "version": version, "exported_at": exported, "artifacts": artifact_hashes(folder)})
