"""Real images and reference answers for the serving tests."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from training.interface.preprocessing import load_image


def tiny_imagenet_jpegs(data_dir: Path, count: int) -> list[bytes]:
    """Original 64x64 Tiny ImageNet JPEG files, straight from the official zip."""
    archive = next(data_dir.glob("tiny-imagenet-200*.zip"))
    with zipfile.ZipFile(archive) as opened:
        names = [n for n in opened.namelist() if n.endswith(".JPEG") and "/val/" in n][:count]
        return [opened.read(name) for name in names]


def exported(name: str, version: int = 1) -> Path:
    return Path(os.environ["IMGCLF_EXPORT_ROOT"]) / name / str(version)


def reference(name: str, blobs: list[bytes], top_k: int = 5) -> list[list[tuple[str, float]]]:
    """What the service must answer: the shared decode + resize, then the exported ONNX model."""
    import onnxruntime

    folder = exported(name)
    card = json.loads((folder / "model_card.json").read_text())
    labels = json.loads((folder / "labels.json").read_text())["class_ids"]
    pixels = np.stack([load_image(data, tuple(card["input_size"])) for data in blobs]).astype(np.float32)
    (probabilities,) = onnxruntime.InferenceSession(str(folder / "model.onnx")).run(None, {"pixels": pixels})
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [[(labels[i], float(row[i])) for i in indices] for row, indices in zip(probabilities, order)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pairs(predictions: list[list[dict]]) -> list[list[tuple[str, float]]]:
    return [[(entry["label"], entry["score"]) for entry in image] for image in predictions]


def assert_same(got: list[list[tuple[str, float]]], expected: list[list[tuple[str, float]]], atol: float = 1e-5) -> None:
    assert len(got) == len(expected)
    for image_got, image_expected in zip(got, expected):
        assert [label for label, _ in image_got] == [label for label, _ in image_expected]
        np.testing.assert_allclose([s for _, s in image_got], [s for _, s in image_expected], atol=atol)
