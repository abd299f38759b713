"""Property-based tests (hypothesis): random and mutated image bytes, and random JSON and protobuf
bodies, thrown at the decode path in-process and at the running service over HTTP and gRPC.
Only clear refusals (4xx, INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED) or correct answers
may come back: no 500, no crash, no hang, and the service stays healthy."""

from __future__ import annotations

import base64
import io
import json

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from protos.imgclf.v1 import classifier_pb2 as pb
from serving.core.errors import InvalidInput, PayloadTooLarge
from serving.core.inference import image_pixels
from serving.core.repository import ServedModel
from serving.core.settings import Settings
from training.interface.preprocessing import InvalidImageError, load_image


def _seed_images() -> list[bytes]:
    """Small valid images in every format the service reads, the seeds the mutations start from."""
    rng = np.random.default_rng(7)
    seeds = []
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("PNG", "L"), ("TIFF", "RGB")):
        picture = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        seeds.append(buffer.getvalue())
    return seeds


SEEDS = _seed_images()


@st.composite
def image_bytes(draw) -> bytes:
    """Random bytes, or a valid image with bytes flipped, cut, inserted or its header rewritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=256))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif data:  # Overwrite early bytes, where formats keep their sizes and flags.
            offset = draw(st.integers(0, min(32, len(data) - 1)))
            data[offset : offset + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], database=None)
LIVE = settings(FUZZ, max_examples=80)  # Against the running service: each example is a request.


@FUZZ
@given(image_bytes())
def test_decode_and_resize_refuse_bad_bytes_with_a_clear_error(data):
    try:
        pixels = load_image(data, (32, 32), max_pixels=4_000_000, min_side=2)
    except InvalidImageError as error:
        assert str(error)  # A message that names the problem.
    else:
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


@FUZZ
@given(st.lists(image_bytes(), min_size=0, max_size=3))
def test_the_services_image_path_raises_only_its_4xx_errors(blobs):
    model = ServedModel("fuzz", 1, None, {"input_size": [32, 32]}, ["a"], ["a"], "none", run=lambda x: x)
    try:
        pixels = image_pixels(blobs, model, Settings(max_image_pixels=4_000_000, max_batch=2))
    except (InvalidInput, PayloadTooLarge) as error:
        assert error.http_status in (400, 413) and error.message
    else:
        assert pixels.shape == (len(blobs), 32, 32, 3) and np.isfinite(pixels).all()


JSON_KEYS = st.sampled_from(["images", "image", "model", "version", "top_k", "pixels", "instances", "inputs", "signature_name", "b64"])
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 300)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | image_bytes().map(lambda data: base64.b64encode(data).decode()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=4),
    max_leaves=12,
)
JSON_BODIES = st.one_of(st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=5).map(lambda value: json.dumps(value).encode()), st.binary(max_size=64))
OK_HTTP = {200, 400, 404, 413}


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.http, timeout=10) as client:
        yield client


@LIVE
@given(
    path=st.sampled_from(["/classify", "/predict", "/v1/models/digits-cnn:predict", "/v1/models/tinyimagenet-cnn/versions/1:predict"]),
    body=JSON_BODIES,
)
def test_random_json_bodies_get_a_clear_answer(http, path, body):
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in OK_HTTP, (response.status_code, response.text)
    if response.status_code != 200:
        assert response.json()["error"]


@LIVE
@given(data=image_bytes(), content_type=st.sampled_from(["image/jpeg", "application/octet-stream", "multipart/form-data; boundary=x", "text/plain"]))
def test_random_image_bodies_get_a_clear_answer(http, data, content_type):
    response = http.post("/classify?model=digits-cnn", content=data, headers={"Content-Type": content_type})
    assert response.status_code in OK_HTTP, (response.status_code, response.text)


@pytest.fixture(scope="module")
def raw_classify(server):
    with grpc.insecure_channel(server.grpc) as channel:
        yield channel.unary_unary("/imgclf.v1.ClassifierService/Classify")


# Random bytes, and well-formed requests (built with the generated message) whose images are fuzzed,
# so that the fuzzed bytes reach the decoder.
PROTOBUF_BODIES = st.one_of(
    st.binary(max_size=128), st.lists(image_bytes(), max_size=3).map(lambda blobs: pb.ClassifyRequest(images=blobs).SerializeToString())
)


@LIVE
@given(PROTOBUF_BODIES)
def test_random_protobuf_messages_get_a_clear_status(raw_classify, message):
    try:
        raw_classify(message, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED), error.details()
        assert error.details()


def test_the_service_is_healthy_after_the_fuzzing(server, http):
    assert http.get("/readyz").status_code == 200
    assert http.post("/classify?model=digits-cnn", content=SEEDS[0], headers={"Content-Type": "image/jpeg"}).status_code == 200
