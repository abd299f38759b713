"""Adaptive batching: one queue per model and worker, shared by the HTTP and gRPC handlers.

Requests that arrive while the model is busy wait in the queue and run together in the next
model call (up to `max_images` images), so under load many small requests become one batch,
and a lone request runs at once: no timer, no added latency when idle.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import numpy as np

from serving.repository import ServedModel


class Batcher:
    def __init__(self, model: ServedModel, executor: Executor, max_images: int):
        self.model, self.executor, self.max_images = model, executor, max_images
        self.pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.running = False
        self.running_alone = False

    @property
    def idle(self) -> bool:
        return not self.running and not self.pending and not self.running_alone

    async def run_alone(self, function, *args):
        """Runs ``function(*args)`` on the executor outside the queue, for a request that found the
        model idle; until it ends the model counts as busy, so the next requests queue."""
        self.running_alone = True
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.running_alone = False

    async def predict(self, pixels: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((pixels, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        taken, images = [], 0
        while self.pending and (not taken or images + len(self.pending[0][0]) <= self.max_images):
            item = self.pending.pop(0)
            images += len(item[0])
            taken.append(item)
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch = [(pixels, future) for pixels, future in self._take() if not future.cancelled()]
                if not batch:
                    continue
                # A lone request (nothing else queued) may use every core; a batch runs on one.
                alone = len(batch) == 1 and not self.pending
                try:
                    probabilities = await loop.run_in_executor(
                        self.executor, self.model.predict, np.concatenate([pixels for pixels, _ in batch]), alone)
                except Exception as error:  # Every request of the batch gets the model's error.
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                start = 0
                for pixels, future in batch:
                    if not future.done():
                        future.set_result(probabilities[start:start + len(pixels)])
                    start += len(pixels)
        finally:
            self.running = False
