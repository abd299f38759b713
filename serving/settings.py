"""Every limit and option of the service, in one place, read once from the environment.

| variable | default | meaning |
|---|---|---|
| IMGCLF_MODELS | (all) | comma-separated models to serve, ``name`` or ``name:version``; default: every imgclf model in the BentoML store (served from a built bento: the models it carries) |
| IMGCLF_DEFAULT_MODEL | first served | the model used when a request names none |
| IMGCLF_TENSORFLOW_MODELS | (none) | models to run with TensorFlow (SavedModel) instead of ONNX Runtime |
| IMGCLF_PREFER_INT8 | 0 | use a model's int8 ONNX variant where its card says it is usable |
| IMGCLF_GRPC_PORT | 50051 | the gRPC port (shared by all workers with SO_REUSEPORT) |
| IMGCLF_MAX_BODY_BYTES | 33554432 | the largest request body (32 MiB) |
| IMGCLF_MAX_IMAGE_PIXELS | 40000000 | the most pixels an image's header may declare |
| IMGCLF_MIN_IMAGE_SIDE | 2 | images narrower or shorter than this are refused |
| IMGCLF_MAX_BATCH | 64 | the most images or arrays in one request |
| IMGCLF_DEFAULT_TOP_K | 5 | classes returned when a request does not say |
| IMGCLF_BATCHING | 1 | batch concurrent requests per model (up to IMGCLF_MAX_BATCH images per model call) |
| IMGCLF_ONNX_THREADS | 1 | ONNX Runtime intra-op threads per model for batched runs (0: one per core); a request alone in its worker runs on a second session that uses every core |
| IMGCLF_ACCESS_LOG | 0 | log every HTTP request (BentoML's access log; it costs about a quarter of the HTTP throughput) |
| IMGCLF_TRACING | 0 | trace requests with BentoML's OpenTelemetry set-up (its `tracing` config picks the exporter) |
| IMGCLF_WORKERS | cores, at most 4 | BentoML API workers, each with its own event loop, models and batching queues |
"""

from __future__ import annotations

import dataclasses
import os


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be 1/0, true/false or yes/no, got {raw!r}")
    return raw in ("1", "true", "yes")


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    models: tuple[str, ...] = ()
    default_model: str | None = None
    tensorflow_models: tuple[str, ...] = ()
    prefer_int8: bool = False
    grpc_port: int = 50051
    max_body_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 2
    max_batch: int = 64
    default_top_k: int = 5
    batching: bool = True
    onnx_threads: int = 1
    access_log: bool = False
    tracing: bool = False
    # One API worker per core, at most 4: each worker loads every model.
    workers: int = max(1, min(os.cpu_count() or 1, 4))

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            models=_list("IMGCLF_MODELS"),
            default_model=os.environ.get("IMGCLF_DEFAULT_MODEL") or None,
            tensorflow_models=_list("IMGCLF_TENSORFLOW_MODELS"),
            prefer_int8=_flag("IMGCLF_PREFER_INT8", False),
            grpc_port=_int("IMGCLF_GRPC_PORT", 50051, 0),
            max_body_bytes=_int("IMGCLF_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            max_image_pixels=_int("IMGCLF_MAX_IMAGE_PIXELS", cls.max_image_pixels, 1),
            min_image_side=_int("IMGCLF_MIN_IMAGE_SIDE", cls.min_image_side, 1),
            max_batch=_int("IMGCLF_MAX_BATCH", cls.max_batch, 1),
            default_top_k=_int("IMGCLF_DEFAULT_TOP_K", cls.default_top_k, 1),
            batching=_flag("IMGCLF_BATCHING", True),
            onnx_threads=_int("IMGCLF_ONNX_THREADS", cls.onnx_threads, 0),
            access_log=_flag("IMGCLF_ACCESS_LOG", False),
            tracing=_flag("IMGCLF_TRACING", False),
            workers=_int("IMGCLF_WORKERS", cls.workers, 1),
        )
