"""Every limit and option of the service, in one place, read once from the environment.

This table is the one list of them; docs/settings.md's copy is checked against it (tests/unit/test_serving_settings.py).

| variable | default | meaning |
|---|---|---|
| IMGCLF_MODELS | (all) | comma-separated models to serve, ``name`` or ``name:version``; default: every imgclf model in the BentoML store (served from a built bento: the models it carries) |
| IMGCLF_DEFAULT_MODEL | first served | the model used when a request names none |
| IMGCLF_TENSORFLOW_MODELS | (none) | models to run with TensorFlow (SavedModel) instead of ONNX Runtime |
| IMGCLF_PREFER_INT8 | 1 | serve a model's int8 ONNX variant where its card says it is usable (within 0.3 points of the float model's top-1); 0 serves the float model |
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
| IMGCLF_QUEUE_SIZE | 64 | requests per model and worker accepted at once (decoding, queued or running); more are refused at once with 503 / RESOURCE_EXHAUSTED and a Retry-After hint |
| IMGCLF_QUEUE_TIMEOUT_MS | 5000 | a request still queued for its model after this long is refused the same way (it never reaches the model) |
| IMGCLF_REQUEST_TIMEOUT_S | 30 | the deadline of an HTTP request that sends no ``X-Request-Timeout`` header (seconds); gRPC requests use their own deadline. Past it, work not yet run is dropped: 504 / DEADLINE_EXCEEDED |
| IMGCLF_TOKENS | (none) | comma-separated API tokens; when any is set (here or in the file), every prediction and metadata call needs ``Authorization: Bearer TOKEN`` (HTTP header or gRPC metadata); health checks stay open |
| IMGCLF_TOKEN_FILE | (none) | a file of API tokens, one per line (``#`` comments allowed), read at start |
| IMGCLF_TLS_CERT_FILE | (none) | PEM certificate (chain) for TLS on both ports; needs IMGCLF_TLS_KEY_FILE |
| IMGCLF_TLS_KEY_FILE | (none) | PEM private key for that certificate |
| IMGCLF_POLL_SECONDS | 30 | how often each worker looks in the model store for new versions of the models it serves by name (0: never; ``POST /admin/reload`` looks at once) |
| IMGCLF_KEEP_VERSIONS | 1 | versions kept addressable per model served by name: the newest N (TensorFlow Serving's ``latest`` policy); ``name:version`` entries are pinned |
| IMGCLF_MONITORING | 1 | watch every prediction: top-1 confidence and class counts, and the drift of the last IMGCLF_DRIFT_WINDOW predictions from the model card's reference, on /metrics (0: off) |
| IMGCLF_DRIFT_WINDOW | 1000 | predictions per model version and worker that the drift gauge compares with the reference |
| IMGCLF_FEEDBACK_ROOT | (none) | the folder where POST /feedback and the Feedback RPC store corrected images (``<label>/<sha256>.<ext>``, read by ``train --dataset folder``) and their log; unset, feedback is refused |
| IMGCLF_FEEDBACK_MAX_IMAGE_BYTES | 4194304 | the largest image feedback stores (4 MiB) |
| IMGCLF_FEEDBACK_QUOTA_BYTES | 1073741824 | the most bytes the feedback folder may hold (1 GiB); past it feedback is refused with 507 / RESOURCE_EXHAUSTED |
| IMGCLF_FEEDBACK_KEEP | 256 | with feedback on: recent classify requests per worker whose images are kept, so that feedback can name their ``request_id`` |
| IMGCLF_FEEDBACK_KEEP_S | 600 | how long (seconds) those images are kept |
| IMGCLF_COLLECT_BELOW | 0 | with feedback on: classified images whose top-1 probability is below this go to ``FEEDBACK_ROOT/_unlabelled/`` for later labelling (0: never) |
| IMGCLF_COLLECT_FRACTION | 0.1 | the share of those images kept (chosen by the image's hash, so the same image is always kept or never) |
| IMGCLF_EXPLAIN_GRID | 8 | explanations occlude a grid of N x N cells of the model's input, one at a time: N * N + 1 images through the model per explanation (at most the input's side) |
| IMGCLF_SHUTDOWN_GRACE_S | 20 | on SIGTERM: seconds to finish accepted requests before the worker exits |
"""  # noqa: E501 - the settings table keeps one row per line

from __future__ import annotations

import dataclasses
import importlib.util
import os


def table() -> str:
    """The settings table of this docstring (what docs/settings.md holds)."""
    return "\n".join(line for line in __doc__.splitlines() if line.startswith("|"))


def _number(name: str, default, minimum, kind=int):
    """The number in variable ``name`` (``default`` when unset or empty): an int, or with
    ``kind=float`` a finite float; at least ``minimum``. A bad value is refused by name."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from None
    if kind is float and not (value >= minimum and value != float("inf")):
        raise ValueError(f"{name} must be a finite number of at least {minimum}, got {raw}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _int(name: str, default: int, minimum: int = 0) -> int:
    return _number(name, default, minimum, int)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be 1/0, true/false or yes/no, got {raw!r}")
    return raw in ("1", "true", "yes")


def _float(name: str, default: float, minimum: float) -> float:
    return _number(name, default, minimum, float)


def _tokens() -> tuple[str, ...]:
    """The API tokens of IMGCLF_TOKENS and of the file IMGCLF_TOKEN_FILE names."""
    tokens = list(_list("IMGCLF_TOKENS"))
    path = os.environ.get("IMGCLF_TOKEN_FILE")
    if path:
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as error:
            raise ValueError(f"IMGCLF_TOKEN_FILE {path!r} cannot be read: {error.strerror}") from None
        tokens += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if not tokens:
            raise ValueError(f"IMGCLF_TOKEN_FILE {path!r} holds no token (one per line)")
    for token in tokens:
        if len(token) < 16 or any(c.isspace() for c in token) or not token.isprintable():
            raise ValueError("API tokens must be at least 16 printable characters with no spaces")
    return tuple(tokens)


def _tls_files() -> tuple[str | None, str | None]:
    cert, key = os.environ.get("IMGCLF_TLS_CERT_FILE") or None, os.environ.get("IMGCLF_TLS_KEY_FILE") or None
    if (cert is None) != (key is None):
        raise ValueError("set both IMGCLF_TLS_CERT_FILE and IMGCLF_TLS_KEY_FILE, or neither")
    for name, path, kind in (("IMGCLF_TLS_CERT_FILE", cert, "CERTIFICATE"), ("IMGCLF_TLS_KEY_FILE", key, "PRIVATE KEY")):
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ValueError(f"{name} {path!r} is not a file")
        try:
            text = open(path, "rb").read()
        except OSError as error:
            raise ValueError(f"{name} {path!r} cannot be read: {error.strerror}") from None
        if b"-----BEGIN " not in text or kind.encode() not in text:
            raise ValueError(f"{name} {path!r} holds no PEM {kind.lower()}")
    return cert, key


def _tensorflow_models() -> tuple[str, ...]:
    models = _list("IMGCLF_TENSORFLOW_MODELS")
    if models and importlib.util.find_spec("tensorflow") is None:
        raise ValueError(
            f"IMGCLF_TENSORFLOW_MODELS names {', '.join(models)}, but TensorFlow is not installed in this server: "
            "install the serve-tf extra (pip install 'imgclf[serve-tf]') or unset IMGCLF_TENSORFLOW_MODELS"
        )
    return models


def _fraction(name: str, default: float) -> float:
    value = _float(name, default, 0)
    if value > 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return value


def _feedback_root() -> str | None:
    """IMGCLF_FEEDBACK_ROOT: a folder that exists or can be made, and that this process can write."""
    path = os.environ.get("IMGCLF_FEEDBACK_ROOT") or None
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(f"IMGCLF_FEEDBACK_ROOT {path!r} cannot be made: {error.strerror}") from None
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"IMGCLF_FEEDBACK_ROOT {path!r} is not a folder this server can write")
    return path


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    models: tuple[str, ...] = ()
    default_model: str | None = None
    tensorflow_models: tuple[str, ...] = ()
    prefer_int8: bool = True
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
    queue_size: int = 64
    queue_timeout_ms: int = 5000
    request_timeout_s: float = 30.0
    tokens: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    token_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    poll_seconds: float = 30.0
    keep_versions: int = 1
    shutdown_grace_s: float = 20.0
    explain_grid: int = 8
    monitoring: bool = True
    drift_window: int = 1000
    feedback_root: str | None = None
    feedback_max_image_bytes: int = 4 * 1024 * 1024
    feedback_quota_bytes: int = 1024 * 1024 * 1024
    feedback_keep: int = 256
    feedback_keep_s: float = 600.0
    collect_below: float = 0.0
    collect_fraction: float = 0.1

    @classmethod
    def from_env(cls) -> Settings:
        tls = _tls_files()
        return cls(
            models=_list("IMGCLF_MODELS"),
            default_model=os.environ.get("IMGCLF_DEFAULT_MODEL") or None,
            tensorflow_models=_tensorflow_models(),
            prefer_int8=_flag("IMGCLF_PREFER_INT8", True),
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
            queue_size=_int("IMGCLF_QUEUE_SIZE", cls.queue_size, 1),
            queue_timeout_ms=_int("IMGCLF_QUEUE_TIMEOUT_MS", cls.queue_timeout_ms, 1),
            request_timeout_s=_float("IMGCLF_REQUEST_TIMEOUT_S", cls.request_timeout_s, 0.001),
            tokens=_tokens(),
            token_file=os.environ.get("IMGCLF_TOKEN_FILE") or None,
            tls_cert_file=tls[0],
            tls_key_file=tls[1],
            poll_seconds=_float("IMGCLF_POLL_SECONDS", cls.poll_seconds, 0),
            keep_versions=_int("IMGCLF_KEEP_VERSIONS", cls.keep_versions, 1),
            shutdown_grace_s=_float("IMGCLF_SHUTDOWN_GRACE_S", cls.shutdown_grace_s, 0),
            explain_grid=_int("IMGCLF_EXPLAIN_GRID", cls.explain_grid, 2),
            monitoring=_flag("IMGCLF_MONITORING", True),
            drift_window=_int("IMGCLF_DRIFT_WINDOW", cls.drift_window, 10),
            feedback_root=_feedback_root(),
            feedback_max_image_bytes=_int("IMGCLF_FEEDBACK_MAX_IMAGE_BYTES", cls.feedback_max_image_bytes, 1),
            feedback_quota_bytes=_int("IMGCLF_FEEDBACK_QUOTA_BYTES", cls.feedback_quota_bytes, 1),
            feedback_keep=_int("IMGCLF_FEEDBACK_KEEP", cls.feedback_keep, 0),
            feedback_keep_s=_float("IMGCLF_FEEDBACK_KEEP_S", cls.feedback_keep_s, 0),
            collect_below=_fraction("IMGCLF_COLLECT_BELOW", cls.collect_below),
            collect_fraction=_fraction("IMGCLF_COLLECT_FRACTION", cls.collect_fraction),
        )

    @property
    def auth_required(self) -> bool:
        return bool(self.tokens)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None
