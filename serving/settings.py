"""Every limit and option of the service, in one place, read once from the environment.

| variable | default | meaning |
|---|---|---|
| IMGCLF_MODELS | (all) | comma-separated models to serve, ``name`` or ``name:version``; default: every imgclf model in the BentoML store |
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
| IMGCLF_WORKERS | 1 | BentoML API workers (read by serving/service.py) |
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

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            models=_list("IMGCLF_MODELS"),
            default_model=os.environ.get("IMGCLF_DEFAULT_MODEL") or None,
            tensorflow_models=_list("IMGCLF_TENSORFLOW_MODELS"),
            prefer_int8=os.environ.get("IMGCLF_PREFER_INT8", "0").lower() in ("1", "true", "yes"),
            grpc_port=_int("IMGCLF_GRPC_PORT", 50051, 0),
            max_body_bytes=_int("IMGCLF_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            max_image_pixels=_int("IMGCLF_MAX_IMAGE_PIXELS", cls.max_image_pixels, 1),
            min_image_side=_int("IMGCLF_MIN_IMAGE_SIDE", cls.min_image_side, 1),
            max_batch=_int("IMGCLF_MAX_BATCH", cls.max_batch, 1),
            default_top_k=_int("IMGCLF_DEFAULT_TOP_K", cls.default_top_k, 1),
            batching=os.environ.get("IMGCLF_BATCHING", "1").lower() not in ("0", "false", "no"),
        )
