"""Every bad input of the serving issue gets a 4xx (or the matching gRPC code) naming the problem,
and the server keeps answering. The server runs with max batch 16, 2 MiB bodies, 4 MP images."""

from __future__ import annotations

import io
import struct
import zlib

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.serving.helpers import b64

pytestmark = pytest.mark.slow


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but which carries almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


GOOD = png(40, 30)
TRUNCATED = GOOD[: len(GOOD) // 2]

IMAGE_CASES = [
    ("not an image", b"hello, I am text", 400, grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
    ("empty bytes", b"", 400, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
    ("truncated", TRUNCATED, 400, grpc.StatusCode.INVALID_ARGUMENT, "cannot decode"),
    # Pillow does not even recognise a PNG declaring 0x0 pixels.
    ("zero by zero", png_header_only(0, 0), 400, grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
    ("one by one", png(1, 1), 400, grpc.StatusCode.INVALID_ARGUMENT, "image is 1x1 pixels; images must be at least 2x2"),
    (
        "header over the pixel limit",
        png_header_only(5000, 5000),
        413,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "image is 5000x5000 = 25000000 pixels, over the limit of 4000000",
    ),
]


def assert_still_serving(server) -> None:
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD)]}, timeout=30)
    assert response.status_code == 200, response.text
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        assert len(stub.Classify(pb.ClassifyRequest(images=[GOOD]), timeout=30).results) == 1


def assert_refused_over_http(url: str, payload: dict, status: int, message: str) -> None:
    response = httpx.post(url, json=payload, timeout=30)
    assert response.status_code == status and message in response.json()["error"], response.text


@pytest.mark.parametrize("case,data,status,code,message", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_images_over_http_and_grpc(case, data, status, code, message, server):
    assert_refused_over_http(f"{server.http}/classify", {"images": [b64(data)]}, status, message)
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(images=[data]), timeout=30)
    assert error.value.code() == code and message in error.value.details()
    assert_still_serving(server)


def test_bad_image_in_a_batch_is_named_by_position(server):
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD), b64(b"junk")]}, timeout=30)
    assert response.status_code == 400 and response.json()["error"].startswith("image 1: not an image")


def test_body_over_the_size_limit_is_refused(server):
    big = b"\xff" * (3 * 1024 * 1024)
    raw = httpx.post(f"{server.http}/classify", content=big, headers={"content-type": "image/jpeg"}, timeout=30)
    assert raw.status_code == 413 and "over the limit of 2097152 bytes" in raw.json()["error"]
    multipart = httpx.post(f"{server.http}/classify", files={"image": ("big.jpg", big, "image/jpeg")}, timeout=30)
    assert multipart.status_code == 413
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(images=[big]), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server)


PIXEL_CASES = [
    ("wrong rank", [1, 2, 3], "has shape [3]; expected [height, width]"),
    ("four dimensions", np.zeros((2, 4, 4, 3)).tolist(), "has shape [2, 4, 4, 3]"),
    ("two channels", np.zeros((4, 4, 2)).tolist(), "has shape [4, 4, 2]"),
    ("strings", [[["a", "b", "c"]] * 4] * 4, "must hold numbers"),
    ("ragged", [[[1, 2, 3], [1, 2]]], "not a rectangular array"),
    ("out of range", np.full((4, 4, 3), 300).tolist(), "values outside 0-255"),
]


@pytest.mark.parametrize("case,pixels,message", PIXEL_CASES, ids=[c[0] for c in PIXEL_CASES])
def test_bad_pixel_arrays(case, pixels, message, server):
    response = httpx.post(f"{server.http}/predict", json={"pixels": [pixels]}, timeout=30)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_nan_and_infinite_pixels(server):
    for value in ("NaN", "Infinity"):
        body = '{"pixels": [[[[' + value + ", 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]]}"
        response = httpx.post(f"{server.http}/predict", content=body, headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 400 and "NaN or infinite" in response.json()["error"]
    with grpc.insecure_channel(server.grpc) as channel:
        array = pb.PixelArray(shape=[2, 2, 3], float_values=pb.FloatValues(values=[float("nan")] + [0.0] * 11))
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(arrays=[array]), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN or infinite" in error.value.details()


def test_empty_batch_and_batch_over_the_limit(server):
    empty = httpx.post(f"{server.http}/classify", json={"images": []}, timeout=30)
    assert empty.status_code == 400 and "holds no images" in empty.json()["error"]
    over = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD)] * 17}, timeout=30)
    assert over.status_code == 413 and "17 images, over the limit of 16" in over.json()["error"]
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Classify(pb.ClassifyRequest(), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as error:
            stub.Classify(pb.ClassifyRequest(images=[GOOD] * 17), timeout=30)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "model,version,message",
    [
        ("nothing", None, "model 'nothing' is not served"),
        ("../../etc/passwd", None, "is not served"),
        ("digits-cnn", 7, "model digits-cnn has no version 7"),
    ],
)
def test_unknown_model_or_version(model, version, message, server):
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD)], "model": model, "version": version}, timeout=30)
    assert response.status_code == 404 and message in response.json()["error"]
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.ClassifierServiceStub(channel).Classify(
                pb.ClassifyRequest(images=[GOOD], model_spec=pb.ModelSpec(name=model, version=version or 0)), timeout=30
            )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND and message in error.value.details()


@pytest.mark.parametrize("top_k", [-1, 11, "three"])
def test_top_k_out_of_range(top_k, server):
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD)], "top_k": top_k}, timeout=30)
    assert response.status_code == 400 and "top_k must be" in response.json()["error"]
    if isinstance(top_k, int):
        with grpc.insecure_channel(server.grpc) as channel:
            with pytest.raises(grpc.RpcError) as error:
                pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(images=[GOOD], top_k=top_k), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_top_k_zero_over_http_is_refused(server):
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(GOOD)], "top_k": 0}, timeout=30)
    assert response.status_code == 400 and "between 1 and 10" in response.json()["error"]


def test_malformed_json_and_protobuf(server):
    for body in (b"{not json", b"[1, 2]", b'{"images": "%%%"}'):
        response = httpx.post(f"{server.http}/classify", content=body, headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 400, (body, response.text)
    assert "malformed JSON" in httpx.post(f"{server.http}/predict", content=b"{", timeout=30).json()["error"]
    with grpc.insecure_channel(server.grpc) as channel:
        for method in ("/imgclf.v1.ClassifierService/Classify", "/tensorflow.serving.PredictionService/Predict"):
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as error:
                call(b"\xff\xff\xff\xff garbage", timeout=30)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in error.value.details()
    assert_still_serving(server)


# --- The Open Inference Protocol v2, on both ports (its protocol-level cases: test_open_inference_in_process.py)


def v2_infer_grpc(server, **fields):
    from serving.grpc.proto_pool import message

    request = message("inference.ModelInferRequest")(model_name="tinyimagenet-cnn", **fields)
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message("inference.ModelInferResponse").FromString,
        )
        return call(request, timeout=30)


def v2_images(*blobs: bytes) -> dict:
    return {"name": "images", "datatype": "BYTES", "shape": [len(blobs)], "data": [b64(blob) for blob in blobs]}


@pytest.mark.parametrize("case,data,status,code,message", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_images_over_v2_http_and_grpc(case, data, status, code, message, server):
    assert_refused_over_http(f"{server.http}/v2/models/tinyimagenet-cnn/infer", {"inputs": [v2_images(data)]}, status, message)
    with pytest.raises(grpc.RpcError) as error:
        v2_infer_grpc(
            server, inputs=[{"name": "images", "datatype": "BYTES", "shape": [1]}], raw_input_contents=[struct.pack("<I", len(data)) + data]
        )
    assert error.value.code() == code and message in error.value.details()
    assert_still_serving(server)


def test_v2_requests_that_break_the_protocol(server):
    url = f"{server.http}/v2/models/tinyimagenet-cnn/infer"
    cases = [
        ({"json": {"inputs": [{**v2_images(GOOD), "datatype": "FP32"}]}}, 400, "input 'images' must be BYTES"),
        ({"json": {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 4, 4, 3], "data": [1.0] * 5}]}}, 400, "5 values do not fill shape"),
        ({"json": {"inputs": [{**v2_images(GOOD), "name": "photo"}]}}, 400, "unknown input 'photo'"),
        ({"json": {"inputs": [v2_images(GOOD)], "outputs": [{"name": "logits"}]}}, 400, "unknown output 'logits'"),
        (
            {"json": {"inputs": [v2_images(GOOD)], "outputs": [{"name": "probabilities", "parameters": {"classification": 201}}]}},
            400,
            "between 1 and 200",
        ),
        ({"json": {"inputs": [v2_images()]}}, 400, "holds no images"),
        ({"json": {"inputs": [v2_images(*[GOOD] * 17)]}}, 413, "17 images, over the limit of 16"),
        ({"content": b'{"inputs": []}', "headers": {"Inference-Header-Content-Length": "99"}}, 400, "runs past the 14-byte body"),
        ({"content": b"x" * (2 * 1024 * 1024 + 1)}, 413, "over the limit of 2097152 bytes"),
    ]
    for kwargs, status, words in cases:
        response = httpx.post(url, timeout=30, **kwargs)
        assert response.status_code == status and words in response.json()["error"], (words, response.text)
    unknown = httpx.post(f"{server.http}/v2/models/tinyimagenet-cnn/versions/9/infer", json={"inputs": [v2_images(GOOD)]}, timeout=30)
    assert unknown.status_code == 404 and "has no version 9" in unknown.json()["error"]
    grpc_cases = [
        (dict(inputs=[{"name": "pixels", "datatype": "INT8", "shape": [1, 2, 2, 3]}]), grpc.StatusCode.INVALID_ARGUMENT, "UINT8 or FP32"),
        (
            dict(inputs=[{"name": "pixels", "datatype": "FP32", "shape": [1, 4, 4, 3]}], raw_input_contents=[b"\0" * 7]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "do not fill",
        ),
        (dict(inputs=[{"name": "images", "datatype": "BYTES", "shape": [0]}]), grpc.StatusCode.INVALID_ARGUMENT, "holds no images"),
        (dict(model_version="9", inputs=[{"name": "images", "datatype": "BYTES", "shape": [1]}]), grpc.StatusCode.NOT_FOUND, "has no version 9"),
        (
            dict(inputs=[{"name": "images", "datatype": "BYTES", "shape": [1]}], raw_input_contents=[b"x" * (2 * 1024 * 1024 + 1)]),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "",
        ),
    ]
    for fields, code, words in grpc_cases:
        with pytest.raises(grpc.RpcError) as error:
            v2_infer_grpc(server, **fields)
        assert error.value.code() == code and words in error.value.details(), (words, error.value.details())
    assert_still_serving(server)
