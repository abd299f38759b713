"""Baseline 1, BentoML-tutorial style: Keras `predict` per request (for benchmarks/serving_load.py only).

The model is the exported SavedModel's Keras original is not in the store, so this loads the
SavedModel's serving_default through Keras' TFSMLayer, which is what a tutorial's
`keras.models.load_model` + `model.predict` costs per call.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
from PIL import Image


@bentoml.service(name="baseline-keras", workers=1)
class KerasBaseline:
    def __init__(self) -> None:
        import keras

        model = bentoml.models.get(os.environ["BASELINE_MODEL"])
        self.size = tuple(model.info.metadata["input_size"])
        layer = keras.layers.TFSMLayer(model.path, call_endpoint="serving_default")
        inputs = keras.Input((*self.size, 3))
        self.model = keras.Model(inputs, layer(inputs))

    @bentoml.api
    def classify(self, image: Image.Image) -> dict:
        pixels = np.asarray(image.convert("RGB").resize(self.size[::-1], Image.Resampling.BILINEAR), np.float32)[None]
        probabilities = list(self.model.predict(pixels, verbose=0).values())[0][0]
        return {"class_index": int(probabilities.argmax()), "score": float(probabilities.max())}
