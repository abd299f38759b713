"""The per-worker state every protocol shares: settings, loaded models, and the thread pool that
runs decoding and inference off the event loop."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serving import inference, metrics
from serving.batching import Batcher
from serving.errors import Unavailable
from serving.repository import ModelRepository, ServedModel
from serving.settings import Settings


class ServiceState:
    def __init__(self, settings: Settings, repository: ModelRepository):
        self.settings, self.repository = settings, repository
        self.executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="imgclf")
        self.batchers: dict[tuple[str, int], Batcher] = {}

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def _batcher(self, model: ServedModel) -> Batcher:
        key = (model.name, model.version)
        if key not in self.batchers:
            self.batchers[key] = Batcher(model, self.executor, self.settings.max_batch)
        return self.batchers[key]

    async def _predict(self, model: ServedModel, pixels: np.ndarray) -> np.ndarray:
        if not self.settings.batching:
            return await self._run(model.predict, pixels)
        return await self._batcher(model).predict(pixels)

    def _decode_and_predict(self, blobs: list[bytes], model: ServedModel) -> np.ndarray:
        return model.predict(inference.image_pixels(blobs, model, self.settings), alone=True)

    async def classify(self, model: ServedModel, blobs: list[bytes], top_k: int, protocol: str) -> list[list[dict]]:
        with metrics.recorded(model.name, protocol, len(blobs)):
            batcher = self._batcher(model) if self.settings.batching else None
            if batcher is not None and batcher.idle:
                # The model is idle: decode and run in one trip to the thread pool, on every core.
                probabilities = await batcher.run_alone(self._decode_and_predict, blobs, model)
            else:
                pixels = await self._run(inference.image_pixels, blobs, model, self.settings)
                probabilities = await self._predict(model, pixels)
            return inference.top_classes(probabilities, model, top_k)

    async def predict_arrays(self, model: ServedModel, arrays: list, protocol: str) -> np.ndarray:
        with metrics.recorded(model.name, protocol, len(arrays)):
            pixels = await self._run(inference.array_pixels, arrays, model, self.settings)
            return await self._predict(model, pixels)


_state: ServiceState | None = None


def install(state: ServiceState) -> None:
    global _state
    _state = state


def current() -> ServiceState:
    if _state is None:
        raise Unavailable("the service is still loading its models")
    return _state
