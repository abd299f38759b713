"""The fuzz targets: every place the server parses untrusted bytes, reached the way a request
reaches it, over a real worker state serving the tiny ONNX model (`tests/tiny_model.py`).

* ``image``: `serving.core.inference.image_pixels` (Pillow's decoders, our orientation, size and
  pixel checks, the shared resize), as every protocol's image input;
* ``multipart``, ``tf_serving_json``, ``v2_json``, ``v2_binary``: a whole HTTP request through the
  real ASGI app (`serving.http.app.app`): Starlette's multipart parser, our JSON and base64
  parsing, TF Serving's instances, and the Open Inference Protocol's JSON and binary tensor
  extension (the ``Inference-Header-Content-Length`` header and the offsets in it);
* ``protobuf``: raw request bytes handed to each gRPC method's registered handler, as grpc.aio
  hands them: our own parsing into the message, then the servicer.

A finding is an exception other than the documented refusals (an HTTP answer is a refusal when it
is 4xx; a gRPC call when it ends with a client-error code), a hang past the runner's bound, or
memory past its bound. Each function takes the input's bytes and says whether the input was
accepted (True) or refused (False); a finding raises.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from pathlib import Path

import grpc
import numpy as np

from serving.core.errors import InvalidInput, PayloadTooLarge

# gRPC codes a client's mistake may end a call with (the error table's client errors).
REFUSAL_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED}
# The ceiling the harnesses run under: small, so that a fuzzer reaches the limits' own checks.
LIMITS = dict(max_body_bytes=1 << 20, max_image_pixels=1 << 20, max_batch=8)


class Finding(AssertionError):
    """An answer that is neither a correct one nor a documented refusal."""


@functools.cache
def state():
    """A worker's state serving the tiny model ``tiny`` version 1 (in a temporary folder)."""
    from serving.core.repository import ModelRepository, load_version
    from serving.core.settings import Settings
    from serving.core.state import ServiceState
    from tests.tiny_model import write_version

    folder = Path(tempfile.mkdtemp(prefix="imgclf-fuzz-"))
    # Feedback on, into the temporary folder, under a small quota: the Feedback RPC is fuzzed too.
    settings = Settings(poll_seconds=0, workers=1, batching=False, feedback_root=str(folder / "feedback"), feedback_quota_bytes=1 << 20, **LIMITS)
    path, card = write_version(folder / "tiny" / "1")
    model = load_version("tiny", 1, path, card, settings)
    return ServiceState(settings, ModelRepository({"tiny": {1: model}}, "tiny", settings))


def image(data: bytes) -> bool:
    from serving.core.inference import image_pixels

    served = state()
    try:
        pixels = image_pixels([data], served.repository.get("tiny"), served.settings)
    except (InvalidInput, PayloadTooLarge):
        return False
    if pixels.shape != (1, 8, 8, 3) or pixels.dtype != np.float32:
        raise Finding(f"decoded to {pixels.dtype} {pixels.shape}")
    return True


@functools.cache
def _http():
    from starlette.testclient import TestClient

    from serving.http.app import app
    from serving.http.common import install

    install(app, state())
    return TestClient(app, raise_server_exceptions=True)


def _post(path: str, body: bytes, headers: dict) -> bool:
    response = _http().post(path, content=body, headers=headers)
    if response.status_code not in (200, 400, 404, 413):
        raise Finding(f"POST {path} answered {response.status_code}: {response.text[:300]}")
    return response.status_code == 200


def multipart(data: bytes) -> bool:
    # The first line is the boundary; the rest is the body, as a client would have framed it.
    boundary, _, body = data.partition(b"\r\n")
    boundary = boundary.strip()[:70] or b"x"
    if not boundary.isascii() or any(c in boundary for c in b'";\\ '):
        boundary = b"x"
    return _post("/classify", body, {"content-type": f"multipart/form-data; boundary={boundary.decode()}"})


def tf_serving_json(data: bytes) -> bool:
    return _post("/v1/models/tiny:predict", data, {"content-type": "application/json"})


def v2_json(data: bytes) -> bool:
    return _post("/v2/models/tiny/infer", data, {"content-type": "application/json"})


def v2_binary(data: bytes) -> bool:
    # The first 4 bytes are the Inference-Header-Content-Length (little-endian); the rest the body.
    length = int.from_bytes(data[:4].ljust(4, b"\0"), "little") % (len(data) + 8)
    return _post("/v2/models/tiny/infer", data[4:], {"content-type": "application/octet-stream", "inference-header-content-length": str(length)})


class _Aborted(Exception):
    def __init__(self, code, details):
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class _Context:
    """What grpc.aio gives a handler that these handlers use: abort, metadata, the deadline."""

    async def abort(self, code, details="", trailing_metadata=()):
        raise _Aborted(code, details)

    def invocation_metadata(self):
        return ()

    def time_remaining(self):
        return None


class _Collector:
    """Takes the generic handlers a servicer module registers (what grpc.aio.Server keeps)."""

    def __init__(self):
        self.handlers = []

    def add_generic_rpc_handlers(self, handlers):
        self.handlers.extend(handlers)


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str):
        self.method, self.invocation_metadata = method, ()


@functools.cache
def _grpc_methods() -> tuple:
    """(full method name, its registered unary handler) of every unary RPC the server serves, as
    the servicer modules register them."""
    from protos.imgclf.v1 import classifier_pb2
    from serving.grpc import imgclf, open_inference, proto_pool, tf_serving

    collector = _Collector()
    for module in (imgclf, tf_serving, open_inference):
        module.add_to_server(state(), collector)
    services = [classifier_pb2.DESCRIPTOR.services_by_name["ClassifierService"]]
    services += [proto_pool.pool().FindServiceByName(name) for name in ("tensorflow.serving.PredictionService", "inference.GRPCInferenceService")]
    methods = []
    for service in services:
        for method in service.methods:
            name = f"/{service.full_name}/{method.name}"
            handler = next(filter(None, (generic.service(_Details(name)) for generic in collector.handlers)), None)
            if handler is not None and handler.unary_unary is not None:
                methods.append((name, handler.unary_unary))
    return tuple(methods)


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def protobuf(data: bytes) -> bool:
    # The first byte picks the method; the rest is its request message's bytes.
    methods = _grpc_methods()
    name, handler = methods[data[0] % len(methods)] if data else methods[0]
    try:
        _loop().run_until_complete(handler(data[1:], _Context()))
    except _Aborted as refusal:
        if refusal.code not in REFUSAL_CODES:
            raise Finding(f"{name} ended with {refusal.code.name}: {refusal.details}") from None
        return False
    return True


HARNESSES = {
    "image": image,
    "multipart": multipart,
    "tf_serving_json": tf_serving_json,
    "v2_json": v2_json,
    "v2_binary": v2_binary,
    "protobuf": protobuf,
}
