"""Retries with exponential backoff and jitter, only where a retry can help: the server could not
be reached, or said it is unavailable (HTTP 503, gRPC UNAVAILABLE) or overloaded (503 with
Retry-After, RESOURCE_EXHAUSTED with ``retry-after`` metadata: the wait is at least that hint,
up to ``max_backoff``). Never on 4xx or other errors."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

from imgclf_client.errors import APIConnectionError, OverloadedError, UnavailableError

RETRYABLE = (APIConnectionError, UnavailableError)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # Tries in all (1: no retry).
    backoff: float = 0.1  # Seconds before the first retry; doubled each time, with jitter.
    max_backoff: float = 2.0

    def delays(self):
        delay = self.backoff
        for _ in range(max(0, self.attempts - 1)):
            yield min(self.max_backoff, delay) * (0.5 + random.random() / 2)
            delay *= 2

    def _wait(self, delays, error: Exception) -> float:
        """The pause before the next try, or re-raises ``error`` when no try is left."""
        delay = next(delays, None)
        if delay is None:
            raise error
        if isinstance(error, OverloadedError):
            delay = max(delay, min(error.retry_after, self.max_backoff))
        return delay

    def call(self, function):
        delays = self.delays()
        while True:
            try:
                return function()
            except RETRYABLE as error:
                time.sleep(self._wait(delays, error))

    async def call_async(self, function):
        delays = self.delays()
        while True:
            try:
                return await function()
            except RETRYABLE as error:
                await asyncio.sleep(self._wait(delays, error))


def policy(retries: int | RetryPolicy) -> RetryPolicy:
    if isinstance(retries, RetryPolicy):
        return retries
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
    return RetryPolicy(attempts=retries + 1)
