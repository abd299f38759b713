"""Baseline 2: ONNX Runtime inside the BentoML API worker, one image per request, no batching
(for benchmarks/serving_load.py only)."""

from __future__ import annotations

import os

import bentoml
import numpy as np
from PIL import Image


@bentoml.service(name="baseline-onnx", workers=1)
class OnnxBaseline:
    def __init__(self) -> None:
        import onnxruntime

        model = bentoml.models.get(os.environ["BASELINE_MODEL"])
        self.size = tuple(model.info.metadata["input_size"])
        self.session = onnxruntime.InferenceSession(os.path.join(model.path, "model.onnx"), providers=["CPUExecutionProvider"])

    @bentoml.api
    def classify(self, image: Image.Image) -> dict:
        pixels = np.asarray(image.convert("RGB").resize(self.size[::-1], Image.Resampling.BILINEAR), np.float32)[None]
        probabilities = self.session.run(None, {"pixels": pixels})[0][0]
        return {"class_index": int(probabilities.argmax()), "score": float(probabilities.max())}
