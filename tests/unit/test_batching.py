"""The adaptive batcher: concurrent requests share model calls, each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serving.core.batching import Batcher
from serving.core.repository import ServedModel


def model_with(run) -> ServedModel:
    card = {"input_size": [2, 2]}
    return ServedModel("toy", 1, None, card, ["a", "b"], ["A", "B"], "numpy", run)


def test_concurrent_requests_are_batched_and_answered_row_for_row():
    calls = []

    def run(pixels):
        calls.append(len(pixels))
        time.sleep(0.02)  # A model call long enough for requests to queue behind it.
        return pixels.reshape(len(pixels), -1)[:, :2] * 2

    batcher = Batcher(model_with(run), ThreadPoolExecutor(2), max_images=8)

    async def main():
        requests = [np.full((1 + i % 3, 2, 2, 3), float(i), np.float32) for i in range(12)]
        answers = await asyncio.gather(*[batcher.predict(r) for r in requests])
        return requests, answers

    requests, answers = asyncio.run(main())
    for request, answer in zip(requests, answers):
        np.testing.assert_array_equal(answer, request.reshape(len(request), -1)[:, :2] * 2)
    assert sum(calls) == sum(len(r) for r in requests)
    assert len(calls) < len(requests) and max(calls) <= 8


def test_a_lone_request_runs_at_once_and_a_model_error_reaches_every_waiting_request():
    started = threading.Event()

    def failing(pixels):
        started.set()
        time.sleep(0.01)
        raise RuntimeError("model exploded")

    batcher = Batcher(model_with(failing), ThreadPoolExecutor(2), max_images=8)

    async def main():
        return await asyncio.gather(*[batcher.predict(np.zeros((1, 2, 2, 3), np.float32)) for _ in range(4)], return_exceptions=True)

    results = asyncio.run(main())
    assert started.is_set() and all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)
    assert not batcher.running and not batcher.pending


def test_batcher_recovers_after_an_error():
    state = {"fail": True}

    def run(pixels):
        if state.pop("fail", False):
            raise ValueError("once")
        return np.ones((len(pixels), 2), np.float32)

    batcher = Batcher(model_with(run), ThreadPoolExecutor(1), max_images=4)
    with pytest.raises(ValueError):
        asyncio.run(batcher.predict(np.zeros((1, 2, 2, 3), np.float32)))
    assert asyncio.run(batcher.predict(np.zeros((3, 2, 2, 3), np.float32))).shape == (3, 2)


def test_a_lone_request_uses_the_all_cores_session_and_a_batch_the_batch_session():
    used = []

    def batched(pixels):
        used.append(("batch", len(pixels)))
        time.sleep(0.02)
        return np.zeros((len(pixels), 2), np.float32)

    def alone(pixels):
        used.append(("alone", len(pixels)))
        time.sleep(0.02)
        return np.ones((len(pixels), 2), np.float32)

    model = ServedModel("toy", 1, None, {"input_size": [2, 2]}, ["a", "b"], ["A", "B"], "numpy", batched, alone)
    batcher = Batcher(model, ThreadPoolExecutor(2), max_images=8)

    async def main():
        lone = await batcher.predict(np.zeros((1, 2, 2, 3), np.float32))
        crowd = await asyncio.gather(*[batcher.predict(np.zeros((1, 2, 2, 3), np.float32)) for _ in range(5)])
        return lone, crowd

    lone, crowd = asyncio.run(main())
    assert used[0] == ("alone", 1) and lone.tolist() == [[1.0, 1.0]]
    # The crowd is queued before the model runs, so it goes as one batch on the batch session.
    assert used[1:] == [("batch", 5)]
    assert [answer.tolist() for answer in crowd] == [[[0.0, 0.0]]] * 5
