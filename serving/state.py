"""The per-worker state every protocol shares: settings, loaded models, and the thread pool that
runs decoding and inference off the event loop."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serving import inference, metrics
from serving.errors import Unavailable
from serving.repository import ModelRepository, ServedModel
from serving.settings import Settings


class ServiceState:
    def __init__(self, settings: Settings, repository: ModelRepository):
        self.settings, self.repository = settings, repository
        self.executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="imgclf")

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def _classify(self, model: ServedModel, blobs: list[bytes], top_k: int) -> list[list[dict]]:
        return inference.top_classes(model.predict(inference.image_pixels(blobs, model, self.settings)), model, top_k)

    async def classify(self, model: ServedModel, blobs: list[bytes], top_k: int, protocol: str) -> list[list[dict]]:
        with metrics.recorded(model.name, protocol, len(blobs)):
            return await self._run(self._classify, model, blobs, top_k)

    async def predict_arrays(self, model: ServedModel, arrays: list, protocol: str) -> np.ndarray:
        with metrics.recorded(model.name, protocol, len(arrays)):
            return await self._run(lambda: model.predict(inference.array_pixels(arrays, model, self.settings)))


_state: ServiceState | None = None


def install(state: ServiceState) -> None:
    global _state
    _state = state


def current() -> ServiceState:
    if _state is None:
        raise Unavailable("the service is still loading its models")
    return _state
