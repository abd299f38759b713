"""Adaptive batching and overload control: one queue per model and worker, shared by the HTTP and
gRPC handlers.

Requests that arrive while the model is busy wait in the queue and run together in the next
model call (up to `max_images` images), so under load many small requests become one batch,
and a lone request runs at once: no timer, no added latency when idle.

The queue is bounded: at most `queue_size` requests per model are admitted at once (decoding,
waiting or running); the next is refused at once with `Overloaded` (503 / RESOURCE_EXHAUSTED,
with a Retry-After hint). A request that waited longer than `queue_timeout` is refused the same
way, one whose deadline passed gets `DeadlineExceeded`, and one whose client went away (its
future cancelled) is skipped: none of them reaches the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import Executor

import numpy as np

from serving.core import metrics, statistics
from serving.core.errors import DeadlineExceeded, Overloaded
from serving.core.repository import ServedModel


def check_deadline(deadline: float | None, where: str = "before it reached the model") -> None:
    """Raises `DeadlineExceeded` if ``deadline`` (a `time.monotonic` instant) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(f"the request's deadline passed {where}; it was dropped, not run")


class Batcher:
    def __init__(self, model: ServedModel, executor: Executor, max_images: int, queue_size: int = 64, queue_timeout: float = 5.0):
        self.model, self.executor, self.max_images = model, executor, max_images
        self.queue_size, self.queue_timeout = queue_size, queue_timeout
        self.pending: list[tuple[np.ndarray, asyncio.Future, float, float | None, statistics.Timing | None]] = []
        self.admitted = 0
        self.running = False
        self.running_alone = False

    @property
    def idle(self) -> bool:
        return not self.running and not self.pending and not self.running_alone

    @contextlib.contextmanager
    def admission(self):
        """Holds one of the model's `queue_size` places for the duration of a request."""
        if self.admitted >= self.queue_size:
            metrics.OVERLOADED.labels(self.model.name).inc()
            raise Overloaded(
                f"model {self.model.name} is overloaded: {self.admitted} requests are already in progress "
                f"in this worker (the queue limit, IMGCLF_QUEUE_SIZE); retry after 1 s"
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def run_model(self, pixels: np.ndarray, alone: bool) -> np.ndarray:
        """Runs the model on ``pixels`` (on the calling thread), counting the images that reach it."""
        metrics.MODEL_IMAGES.labels(self.model.name).inc(len(pixels))
        statistics.executed(self.model.name, self.model.version)
        return self.model.predict(pixels, alone)

    async def run_alone(self, function, *args):
        """Runs ``function(*args)`` on the executor outside the queue, for a request that found the
        model idle; until it ends the model counts as busy, so the next requests queue."""
        self.running_alone = True
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.running_alone = False

    async def predict(self, pixels: np.ndarray, deadline: float | None = None, timing: statistics.Timing | None = None) -> np.ndarray:
        """Queues ``pixels`` for the next model call; ``timing`` gets the time queued and the model's run time."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((pixels, future, time.monotonic(), deadline, timing))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _admissible(self, future: asyncio.Future, queued_at: float, deadline: float | None) -> bool:
        """False (and the future answered) for work that must not reach the model."""
        if future.done():  # Cancelled: the client went away or its gRPC deadline passed.
            metrics.DROPPED.labels(self.model.name, "cancelled").inc()
            return False
        try:
            check_deadline(deadline, "while it waited for the model")
        except DeadlineExceeded as error:
            metrics.DROPPED.labels(self.model.name, "deadline").inc()
            future.set_exception(error)
            return False
        now = time.monotonic()
        if now - queued_at > self.queue_timeout:
            metrics.DROPPED.labels(self.model.name, "queue_timeout").inc()
            future.set_exception(
                Overloaded(
                    f"model {self.model.name} is overloaded: the request waited {1000 * (now - queued_at):.0f} ms in its queue, "
                    f"over the limit of {1000 * self.queue_timeout:.0f} ms (IMGCLF_QUEUE_TIMEOUT_MS); retry after 1 s"
                )
            )
            return False
        return True

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future, statistics.Timing | None]]:
        taken, images = [], 0
        while self.pending and (not taken or images + len(self.pending[0][0]) <= self.max_images):
            pixels, future, queued_at, deadline, timing = self.pending.pop(0)
            if self._admissible(future, queued_at, deadline):
                images += len(pixels)
                if timing is not None:
                    timing.queue += time.monotonic() - queued_at
                taken.append((pixels, future, timing))
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch = self._take()
                if not batch:
                    continue
                # A lone request (nothing else queued) may use every core; a batch runs on one.
                alone = len(batch) == 1 and not self.pending
                started = time.perf_counter()
                try:
                    probabilities = await loop.run_in_executor(
                        self.executor, self.run_model, np.concatenate([pixels for pixels, _, _ in batch]), alone
                    )
                except Exception as error:  # Every request of the batch gets the model's error.
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                ran = time.perf_counter() - started
                start = 0
                for pixels, future, timing in batch:
                    if timing is not None:
                        timing.compute_infer += ran
                    if not future.done():
                        future.set_result(probabilities[start : start + len(pixels)])
                    start += len(pixels)
        finally:
            self.running = False
