"""Per-model Prometheus metrics, exported on BentoML's /metrics next to its own.

imgclf_requests_total{model, protocol, outcome}      outcome: ok, cancelled, invalid_argument, not_found, ...
imgclf_images_total{model, protocol}                 images (or arrays) classified
imgclf_request_duration_seconds{model, protocol}     decode + resize + inference time
imgclf_model_images_total{model}                     images (or arrays) that reached the model
imgclf_overloaded_total{model}                       requests refused because the model's queue was full
imgclf_dropped_total{model, reason}                  queued work dropped before the model: cancelled, deadline, queue_timeout
imgclf_model_loads_total{model, outcome}             versions loaded while serving: loaded, refused
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Counter, Histogram

from serving.core.errors import ServingError

REQUESTS = Counter("imgclf_requests", "Prediction requests by model, protocol and outcome", ["model", "protocol", "outcome"])
IMAGES = Counter("imgclf_images", "Images and pixel arrays classified", ["model", "protocol"])
LATENCY = Histogram(
    "imgclf_request_duration_seconds",
    "Decode, resize and inference time per request",
    ["model", "protocol"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
MODEL_IMAGES = Counter("imgclf_model_images", "Images and pixel arrays that reached the model", ["model"])
OVERLOADED = Counter("imgclf_overloaded", "Requests refused at once because the model's queue was full", ["model"])
DROPPED = Counter("imgclf_dropped", "Queued work dropped before it reached the model", ["model", "reason"])
MODEL_LOADS = Counter("imgclf_model_loads", "Model versions loaded (or refused) while serving", ["model", "outcome"])


DROP_REASONS = ("cancelled", "deadline", "queue_timeout")


def initialise(model: str) -> None:
    """Creates a served model's event counters at 0, so that they are on /metrics (and rate() over
    them works) before the first overload, drop or reload."""
    OVERLOADED.labels(model)
    for reason in DROP_REASONS:
        DROPPED.labels(model, reason)
    for outcome in ("loaded", "refused"):
        MODEL_LOADS.labels(model, outcome)


def outcome(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError):  # The client went away (or its deadline passed).
        return "cancelled"
    if isinstance(error, ServingError):
        return error.grpc_code.name.lower()
    return "internal"


@contextlib.contextmanager
def recorded(model: str, protocol: str, images: int):
    """Counts one request (and its images) and times it; an error is counted by its status."""
    start = time.perf_counter()
    try:
        yield
    except BaseException as error:
        REQUESTS.labels(model, protocol, outcome(error)).inc()
        error.recorded = True
        raise
    LATENCY.labels(model, protocol).observe(time.perf_counter() - start)
    IMAGES.labels(model, protocol).inc(images)
    REQUESTS.labels(model, protocol, "ok").inc()


# The names of the models this worker serves: a refused request's label is its model's name only
# if it is one of these, so that clients cannot add a series per made-up name (the label set, and
# /metrics, would grow without bound; schemathesis found names holding line separators there).
SERVED_MODELS: set[str] = set()


def record_error(model: str | None, protocol: str, error: BaseException) -> None:
    """Counts a request refused before it reached a model (unknown model, bad top_k, bad body);
    a model name that is not served is counted as ``-``."""
    if not getattr(error, "recorded", False):
        REQUESTS.labels(model if model in SERVED_MODELS else "-", protocol, outcome(error)).inc()
