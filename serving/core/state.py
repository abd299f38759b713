"""The per-worker state every protocol shares: settings, loaded models, and the thread pool that
runs decoding and inference off the event loop. The BentoML service makes one per worker and hands
it to both front doors: the HTTP app (`serving.http.common.install`) and the gRPC servicers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serving.core import explain, guards, inference, metrics, statistics
from serving.core.batching import Batcher, check_deadline
from serving.core.errors import ClientGone, FeedbackDisabled, InvalidInput, Unavailable
from serving.core.feedback import UNLABELLED, FeedbackStore, RecentPredictions
from serving.core.monitoring import Monitor
from serving.core.repository import ModelRepository, ServedModel
from serving.core.settings import Settings

log = logging.getLogger("imgclf.serving")


class ServiceState:
    def __init__(self, settings: Settings, repository: ModelRepository):
        self.settings, self.repository = settings, repository
        self.executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="imgclf")
        self.batchers: dict[tuple[str, int], Batcher] = {}
        self.monitors: dict[tuple[str, int], Monitor] = {}
        self.draining = False  # Set on SIGTERM: new work is refused, accepted work finishes.
        self._refreshing = asyncio.Lock()
        self.feedback: FeedbackStore | None = None
        self.recent: RecentPredictions | None = None
        if settings.feedback_root:
            self.feedback = FeedbackStore(settings.feedback_root, settings.feedback_max_image_bytes, settings.feedback_quota_bytes)
            self.recent = RecentPredictions(settings.feedback_keep, settings.feedback_keep_s) if settings.feedback_keep else None
        self._watch_served()

    def _watch_served(self) -> None:
        """Each served model's counters at 0 and each version's `Monitor` (its drift threshold on /metrics) from the start."""
        for name, versions in self.repository.models.items():
            metrics.initialise(name)
            for model in versions.values():
                self._monitor(model)

    async def refresh_models(self) -> list[str]:
        """Picks up new versions from the model store now (see `ModelRepository.refresh`)."""
        async with self._refreshing:
            changes = await self._run(self.repository.refresh)
        served = {(name, version) for name, versions in self.repository.models.items() for version in versions}
        for key in [key for key in self.batchers if key not in served]:
            del self.batchers[key]  # Requests still running on a retired version hold their own reference.
        for key in [key for key in self.monitors if key not in served]:
            del self.monitors[key]
        self._watch_served()
        return changes

    async def poll_models(self) -> None:
        """Every IMGCLF_POLL_SECONDS: `refresh_models`, for as long as the worker runs."""
        while self.settings.poll_seconds > 0:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.refresh_models()
            except Exception:  # The store may be mid-write or unreadable for a moment: log, keep serving.
                log.exception("looking for new model versions failed; still serving what is loaded")

    def in_progress(self) -> int:
        return sum(batcher.admitted for batcher in self.batchers.values())

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def _batcher(self, model: ServedModel) -> Batcher:
        key = (model.name, model.version)
        if key not in self.batchers:
            settings = self.settings
            self.batchers[key] = Batcher(model, self.executor, settings.max_batch, settings.queue_size, settings.queue_timeout_ms / 1000)
        return self.batchers[key]

    def _observe(self, model: ServedModel, probabilities: np.ndarray, timing: statistics.Timing) -> np.ndarray:
        """Feeds the answer to the model version's `Monitor` (IMGCLF_MONITORING); returns it unchanged."""
        started = time.perf_counter()
        monitor = self._monitor(model)
        if monitor is not None:
            monitor.observe(probabilities)
        timing.compute_output += time.perf_counter() - started
        return probabilities

    def _monitor(self, model: ServedModel) -> Monitor | None:
        if not self.settings.monitoring:
            return None
        key = (model.name, model.version)
        if key not in self.monitors:
            self.monitors[key] = Monitor(model.name, model.version, model.labels, model.card, self.settings.drift_window)
        return self.monitors[key]

    @contextlib.contextmanager
    def _statistics(self, model: ServedModel, images: int):
        """Times a request for the statistics extension (`serving.core.statistics`): success or fail, and its phases."""
        timing, started = statistics.Timing(), time.perf_counter()
        try:
            yield timing
        except BaseException:
            statistics.record(model.name, model.version, False, time.perf_counter() - started, images, timing)
            raise
        statistics.record(model.name, model.version, True, time.perf_counter() - started, images, timing)

    def _deadline(self) -> float:
        """The current request's deadline (`guards.DEADLINE`), else IMGCLF_REQUEST_TIMEOUT_S from now."""
        deadline = guards.DEADLINE.get()
        return time.monotonic() + self.settings.request_timeout_s if deadline is None else deadline

    def _accept(self) -> None:
        if self.draining:
            raise Unavailable("the service is shutting down; send the request to another replica or retry")

    async def _watched(self, coroutine):
        """Runs ``coroutine``, cancelling it (so its queued work is dropped) if the HTTP client goes away."""
        gone = guards.CLIENT_GONE.get()
        if gone is None:
            return await coroutine
        work, watcher = asyncio.ensure_future(coroutine), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((work, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if not work.done():
            work.cancel()
            error = ClientGone("the client went away before its answer was ready")
            error.recorded = True  # The cancelled work counted it already.
            raise error
        return work.result()

    async def _predict(self, batcher: Batcher, pixels: np.ndarray, deadline: float | None, timing: statistics.Timing | None = None) -> np.ndarray:
        if not self.settings.batching:
            check_deadline(deadline)
            started = time.perf_counter()
            probabilities = await self._run(batcher.run_model, pixels, False)
            if timing is not None:
                timing.compute_infer += time.perf_counter() - started
            return probabilities
        return await batcher.predict(pixels, deadline, timing)

    def _pixels(self, function, items: list, model: ServedModel, deadline: float | None, timing: statistics.Timing | None = None) -> np.ndarray:
        check_deadline(deadline, "before its images were decoded")
        started = time.perf_counter()
        pixels = function(items, model, self.settings)
        if timing is not None:
            timing.compute_input += time.perf_counter() - started
        return pixels

    def _decode_and_predict(
        self, blobs: list[bytes], model: ServedModel, batcher: Batcher, deadline: float | None, timing: statistics.Timing
    ) -> np.ndarray:
        pixels = self._pixels(inference.image_pixels, blobs, model, deadline, timing)
        started = time.perf_counter()
        probabilities = batcher.run_model(pixels, True)
        timing.compute_infer += time.perf_counter() - started
        return probabilities

    async def classify(self, model: ServedModel, blobs: list[bytes], top_k: int, protocol: str) -> list[list[dict]]:
        return inference.top_classes(await self.predict_images(model, blobs, protocol), model, top_k)

    async def predict_images(self, model: ServedModel, blobs: list[bytes], protocol: str, observe: bool = True) -> np.ndarray:
        """Every class's probability for each encoded image (decoded and resized as training did);
        ``observe=False`` keeps the answers out of the prediction monitoring (feedback's own runs)."""
        return await self._watched(self._predict_images(model, blobs, protocol, observe))

    async def predict_arrays(self, model: ServedModel, arrays: list, protocol: str) -> np.ndarray:
        return await self._watched(self._predict_arrays(model, arrays, protocol))

    async def _predict_images(self, model: ServedModel, blobs: list[bytes], protocol: str, observe: bool = True) -> np.ndarray:
        self._accept()
        deadline = self._deadline()
        batcher = self._batcher(model)
        with metrics.recorded(model.name, protocol, len(blobs)), self._statistics(model, len(blobs)) as timing, batcher.admission():
            if self.settings.batching and batcher.idle:
                # The model is idle: decode and run in one trip to the thread pool, on every core.
                probabilities = await batcher.run_alone(self._decode_and_predict, blobs, model, batcher, deadline, timing)
            else:
                pixels = await self._run(self._pixels, inference.image_pixels, blobs, model, deadline, timing)
                probabilities = await self._predict(batcher, pixels, deadline, timing)
            if not observe:
                return probabilities
            self._collect(model, blobs, probabilities)
            return self._observe(model, probabilities, timing)

    async def _predict_arrays(self, model: ServedModel, arrays: list, protocol: str) -> np.ndarray:
        self._accept()
        deadline = self._deadline()
        batcher = self._batcher(model)
        with metrics.recorded(model.name, protocol, len(arrays)), self._statistics(model, len(arrays)) as timing, batcher.admission():
            pixels = await self._run(self._pixels, inference.array_pixels, arrays, model, deadline, timing)
            return self._observe(model, await self._predict(batcher, pixels, deadline, timing), timing)

    async def explain(self, model: ServedModel, blob: bytes, class_index: int | None, protocol: str) -> dict:
        """Which cells of the image's model input ``class_index`` (default: the top class) depends
        on (`serving.core.explain`): a fixed number of images through the model's queue, in chunks
        of at most IMGCLF_MAX_BATCH, under the request's deadline and the queue's limits."""
        return await self._watched(self._explain(model, blob, class_index, protocol))

    async def _explain(self, model: ServedModel, blob: bytes, class_index: int | None, protocol: str) -> dict:
        self._accept()
        deadline = self._deadline()
        batcher = self._batcher(model)
        method = explain.Occlusion.for_input(model.input_size, self.settings.explain_grid)
        with metrics.recorded(model.name, protocol, 1), batcher.admission():
            pixels = await self._run(self._pixels, inference.image_pixels, [blob], model, deadline)
            images = method.batch(pixels[0])
            step = self.settings.max_batch
            answers = [await self._predict(batcher, images[start : start + step], deadline) for start in range(0, len(images), step)]
        probabilities = np.concatenate(answers)
        chosen = int(np.argmax(probabilities[0])) if class_index is None else class_index
        heatmap, informative = method.heatmap(probabilities, chosen)
        return {
            "class_index": chosen,
            "label": model.labels[chosen],
            "name": model.names[chosen],
            "score": float(probabilities[0, chosen]),
            "heatmap": heatmap,
            "informative": informative,
            "method": method.describe(),
        }

    def remember(self, model: ServedModel, blobs: list[bytes], probabilities: np.ndarray) -> str | None:
        """With feedback on: keeps a classify request's images and answers; returns the request_id that feedback may name."""
        if self.recent is None:
            return None
        top = probabilities.argmax(axis=1)
        return self.recent.add(model.name, model.version, [(blob, model.labels[i], float(row[i])) for blob, i, row in zip(blobs, top, probabilities)])

    def _collect(self, model: ServedModel, blobs: list[bytes], probabilities: np.ndarray) -> None:
        """IMGCLF_COLLECT_BELOW: a share of the images answered with low confidence, to `UNLABELLED` (in the background)."""
        settings = self.settings
        if self.feedback is None or settings.collect_below <= 0:
            return
        for blob, row in zip(blobs, probabilities):
            if row.max() < settings.collect_below and int(hashlib.sha256(blob).hexdigest()[:8], 16) < settings.collect_fraction * 2**32:
                future = self.executor.submit(self.feedback.store, blob, UNLABELLED)
                future.add_done_callback(_log_collect_failure)

    async def give_feedback(
        self, model: ServedModel | None, label: str, protocol: str, blob: bytes | None = None, request_id: str | None = None, index: int = 0
    ) -> dict:
        """Stores an image with its correct ``label`` (one of ``model``'s class ids), sent itself or
        named by the ``request_id`` of a recent classify request, and logs it with the model's answer."""
        if self.feedback is None:
            raise FeedbackDisabled(
                "feedback is off on this server: set IMGCLF_FEEDBACK_ROOT to a writable folder (a volume shared by the pods) "
                "to store corrected images there"
            )
        self._accept()
        source = "request_id" if request_id else "image"
        if request_id:
            if self.recent is None:
                raise InvalidInput("this server keeps no recent predictions (IMGCLF_FEEDBACK_KEEP=0); send the image itself")
            # The model version that answered the request (or, retired since, its name's latest).
            name, version, blob, predicted, score = self.recent.get(request_id, index)
            model = self.repository.models.get(name, {}).get(version) or self.repository.get(name)
        if model is None:
            raise InvalidInput("name the model, or the request_id of a recent classify request")
        if label not in model.labels:
            shown = ", ".join(model.labels[:5]) + (", ..." if model.num_classes > 5 else "")
            raise InvalidInput(f"label {label!r} is not one of the {model.num_classes} class ids of {model.name} ({shown})")
        if blob is None:
            raise InvalidInput("send the image, or the request_id of a recent classify request")
        if not request_id:
            self.feedback.check_size(blob)
            probabilities = (await self.predict_images(model, [blob], protocol, observe=False))[0]
            top = int(probabilities.argmax())
            predicted, score = model.labels[top], float(probabilities[top])
        stored, digest, duplicate = await self._run(self.feedback.store, blob, label)
        entry = {"model": model.name, "version": model.version, "predicted": predicted, "score": round(score, 6), "label": label}
        await self._run(self.feedback.log, {**entry, "file": stored, "sha256": digest, "source": source, "duplicate": duplicate})
        return {**entry, "stored": stored, "sha256": digest, "duplicate": duplicate}


def _log_collect_failure(future) -> None:
    error = future.exception()
    if error is not None:
        log.warning("a low-confidence image was not collected: %s", getattr(error, "message", error))
