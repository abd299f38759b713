"""The model-parameter randomisation test of Adebayo et al. (2018), "Sanity Checks for Saliency
Maps", on a really trained and exported model: an explanation that depends on what the model
learned must change when its weights are replaced by random ones. A method that only traced the
image (its edges, its bright parts) would give the same map for both and fail here."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from serving.core.repository import ModelRepository, load_version
from serving.core.settings import Settings
from serving.core.state import ServiceState


def _randomised(folder, seed: int = 0) -> None:
    """Replaces every weight matrix and kernel of ``folder``'s model.onnx with Gaussian noise of the
    same spread (as the paper's full randomisation does), and updates the card's checksum."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(folder / "model.onnx"))
    rng = np.random.default_rng(seed)
    replaced = 0
    for index, tensor in enumerate(model.graph.initializer):
        weights = numpy_helper.to_array(tensor)
        if weights.dtype == np.float32 and weights.ndim >= 2 and weights.size > 1:
            noise = rng.normal(0, float(weights.std()) or 0.05, weights.shape).astype(np.float32)
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(noise, tensor.name))
            replaced += 1
    assert replaced >= 3, "the model has fewer weight tensors than a CNN"
    onnx.save(model, str(folder / "model.onnx"))
    card = json.loads((folder / "model_card.json").read_text())
    card["artifacts"]["model.onnx"] = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    (folder / "model_card.json").write_text(json.dumps(card))


def _state(folder) -> ServiceState:
    settings = Settings(poll_seconds=0, workers=1)
    card = json.loads((folder / "model_card.json").read_text())
    model = load_version("demo", 1, folder, card, settings)
    return ServiceState(settings, ModelRepository({"demo": {1: model}}, "demo", settings))


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values.reshape(-1), kind="stable"), kind="stable").astype(np.float64)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _digits(count: int) -> list[bytes]:
    """Digits of scikit-learn's set as 8x8 PNGs, their 0-16 levels scaled to 0-255 as the demo's data is."""
    from sklearn.datasets import load_digits

    blobs = []
    for pixels in load_digits().images[-count:]:
        buffer = io.BytesIO()
        Image.fromarray(np.uint8(np.rint(pixels * 255 / 16)), "L").save(buffer, "PNG")
        blobs.append(buffer.getvalue())
    return blobs


def _maps(state: ServiceState, blobs: list[bytes], class_indices: list[int | None]) -> list[dict]:
    model = state.repository.get()

    async def run():
        return [await state.explain(model, blob, index, "http") for blob, index in zip(blobs, class_indices)]

    return asyncio.run(run())


@pytest.mark.slow
def test_the_map_changes_when_the_models_weights_are_randomised(demo_export, tmp_path):
    source = next((demo_export["exports"]).glob("*/1"))
    trained, randomised = tmp_path / "trained", tmp_path / "randomised"
    shutil.copytree(source, trained)
    shutil.copytree(source, randomised)
    _randomised(randomised)
    blobs = _digits(12)
    explained = _maps(_state(trained), blobs, [None] * len(blobs))
    # The same class of each image explained by both models, so only the weights differ.
    classes = [answer["class_index"] for answer in explained]
    noise = _maps(_state(randomised), blobs, classes)
    pairs = [(a["heatmap"], b["heatmap"]) for a, b in zip(explained, noise) if a["informative"] and b["informative"]]
    assert len(pairs) >= len(blobs) // 2, "most maps should be informative"
    correlations = [spearman(a, b) for a, b in pairs]
    # Same-model maps agree perfectly (the method is deterministic), randomised ones do not.
    again = _maps(_state(trained), blobs[:2], classes[:2])
    assert spearman(again[0]["heatmap"], explained[0]["heatmap"]) == pytest.approx(1)
    assert float(np.mean(correlations)) < 0.5, correlations
