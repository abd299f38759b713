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

    async def _predict(self, model: ServedModel, pixels: np.ndarray) -> np.ndarray:
        if not self.settings.batching:
            return await self._run(model.predict, pixels)
        key = (model.name, model.version)
        if key not in self.batchers:
            self.batchers[key] = Batcher(model, self.executor, self.settings.max_batch)
        return await self.batchers[key].predict(pixels)

    async def classify(self, model: ServedModel, blobs: list[bytes], top_k: int, protocol: str) -> list[list[dict]]:
        with metrics.recorded(model.name, protocol, len(blobs)):
            pixels = await self._run(inference.image_pixels, blobs, model, self.settings)
            return inference.top_classes(await self._predict(model, pixels), model, top_k)

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
