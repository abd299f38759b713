"""The Open Inference Protocol v2 (KServe / Triton) in process, on both front doors, over the tiny
real ONNX model: health and metadata, infer with images and pixels in JSON and binary form (HTTP)
and in raw and typed contents (gRPC), the classification extension, and every bad input. The
request bodies here are built by hand from the protocol's rules (not with the server's encoders);
tests/clients/test_tritonclient.py drives the live server with the real tritonclient."""

from __future__ import annotations

import base64
import json
import struct

import grpc
import numpy as np
import pytest
from starlette.testclient import TestClient

from serving.grpc.proto_pool import message
from serving.http.app import app
from tests.serving.conftest import TOKEN, encoded, run_with_grpc
from tests.tiny_model import LABELS, solid

RED, GREEN, BLUE = (encoded(solid(c)) for c in range(3))
INFER = "/v2/models/tiny/infer"
SERVICE = "/inference.GRPCInferenceService/"


def length_prefixed(*blobs: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(blob)) + blob for blob in blobs)


def elements(raw: bytes) -> list[str]:
    """The strings of a raw BYTES tensor."""
    strings, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        strings.append(raw[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    return strings


def images_input(*blobs: bytes) -> dict:
    return {"name": "images", "datatype": "BYTES", "shape": [len(blobs)], "data": [base64.b64encode(b).decode() for b in blobs]}


def binary_request(header: dict, *chunks: bytes) -> dict:
    """TestClient keyword arguments for a binary-extension request."""
    encoded_header = json.dumps(header).encode()
    return {"content": encoded_header + b"".join(chunks), "headers": {"Inference-Header-Content-Length": str(len(encoded_header))}}


def binary_outputs(response) -> list[tuple[dict, bytes]]:
    """(output entry, its raw bytes) for each output of a binary-extension response."""
    length = int(response.headers["Inference-Header-Content-Length"])
    header, rest = json.loads(response.content[:length]), response.content[length:]
    outputs, offset = [], 0
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        outputs.append((output, rest[offset : offset + size]))
        offset += size
    assert offset == len(rest)
    return outputs


def reference(http, blobs: list[bytes]) -> np.ndarray:
    """The probabilities /classify's path gives (every class as top-k)."""
    body = http.post("/classify", json={"images": [base64.b64encode(b).decode() for b in blobs], "top_k": 3}).json()
    rows = np.zeros((len(blobs), 3), np.float32)
    for row, predictions in zip(rows, body["predictions"]):
        for entry in predictions:
            row[entry["class_index"]] = entry["score"]
    return rows


# --- HTTP ---------------------------------------------------------------------------------------


def test_health_and_metadata_over_http(http):
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    server = http.get("/v2").json()
    assert server["name"] == "imgclf" and set(server["extensions"]) == {"classification", "binary_tensor_data", "statistics"}
    metadata = http.get("/v2/models/tiny").json()
    assert metadata == http.get("/v2/models/tiny/versions/1").json()
    assert metadata == {
        "name": "tiny",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "images", "datatype": "BYTES", "shape": [-1]}, {"name": "pixels", "datatype": "FP32", "shape": [-1, 8, 8, 3]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
    }
    assert http.get("/v2/models/tiny/versions/1/ready").json() == {"name": "tiny", "version": "1", "ready": True}
    assert http.get("/v2/models/nope/ready").status_code == 404
    assert http.get("/v2/models/tiny/versions/2/ready").status_code == 404


def test_infer_json_images_and_pixels_equal_the_classify_path(http):
    expected = reference(http, [RED, BLUE])
    body = http.post(INFER, json={"id": "req-7", "inputs": [images_input(RED, BLUE)]}).json()
    assert body["id"] == "req-7" and (body["model_name"], body["model_version"]) == ("tiny", "1")
    (output,) = body["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("probabilities", "FP32", [2, 3])
    np.testing.assert_allclose(np.reshape(output["data"], (2, 3)), expected, atol=1e-6)
    # Pixels at the model's size (flat data) and at another size (nested data, resized by the server).
    at_size = solid(0, (8, 8)).astype(np.float32)
    flat = http.post(INFER, json={"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 8, 8, 3], "data": at_size.reshape(-1).tolist()}]})
    assert np.argmax(flat.json()["outputs"][0]["data"]) == 0
    other = solid(2, (5, 9))
    nested = http.post(INFER, json={"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 5, 9, 3], "data": [other.tolist()]}]})
    assert np.argmax(nested.json()["outputs"][0]["data"]) == 2
    predicted = http.post("/predict", json={"pixels": [other.tolist()]}).json()["probabilities"]
    np.testing.assert_allclose(nested.json()["outputs"][0]["data"], predicted[0], atol=1e-6)


def test_infer_binary_tensors_and_the_classification_extension(http):
    header = {
        "inputs": [{"name": "images", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": len(length_prefixed(RED, GREEN, BLUE))}}],
        "outputs": [
            {"name": "probabilities", "parameters": {"binary_data": True}},
            {"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}},
        ],
    }
    response = http.post(INFER, **binary_request(header, length_prefixed(RED, GREEN, BLUE)))
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    (probabilities, raw_probabilities), (classes, raw_classes) = binary_outputs(response)
    rows = np.frombuffer(raw_probabilities, "<f4").reshape(probabilities["shape"])
    np.testing.assert_allclose(rows, reference(http, [RED, GREEN, BLUE]), atol=1e-6)
    assert (classes["datatype"], classes["shape"]) == ("BYTES", [3, 2])
    strings = elements(raw_classes)
    assert [s.split(":")[1:] for s in strings[::2]] == [["0", "red"], ["1", "green"], ["2", "blue"]]
    assert float(strings[0].split(":")[0]) == pytest.approx(rows[0, 0], abs=1e-6)
    # Pixels in binary, every output binary by the request-level parameter.
    pixels = solid(1, (8, 8)).astype("<f4")
    header = {
        "parameters": {"binary_data_output": True},
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 8, 8, 3], "parameters": {"binary_data_size": pixels.nbytes}}],
    }
    ((output, raw),) = binary_outputs(http.post(INFER, **binary_request(header, pixels.tobytes())))
    assert output["name"] == "probabilities" and np.argmax(np.frombuffer(raw, "<f4")) == 1


def test_classification_in_json_matches_classify(http):
    body = http.post(INFER, json={"inputs": [images_input(GREEN)], "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}]})
    (output,) = body.json()["outputs"]
    assert (output["datatype"], output["shape"]) == ("BYTES", [1, 3])
    top = http.post("/classify", json={"images": [base64.b64encode(GREEN).decode()], "top_k": 3}).json()["predictions"][0]
    assert [s.split(":", 2)[1:] for s in output["data"]] == [[str(e["class_index"]), e["label"]] for e in top]
    assert [float(s.split(":")[0]) for s in output["data"]] == pytest.approx([e["score"] for e in top], abs=1e-6)
    assert [e["label"] for e in top][0] == LABELS[1]


HTTP_BAD = [
    ({"json": {"inputs": [{**images_input(RED), "datatype": "FP32"}]}}, 400, "input 'images' must be BYTES"),
    ({"json": {"inputs": [{"name": "pixels", "datatype": "INT8", "shape": [1, 2, 2, 3], "data": [0] * 12}]}}, 400, "must be UINT8 or FP32"),
    ({"json": {"inputs": [{"name": "pixels", "datatype": "FP99", "shape": [1], "data": [0]}]}}, 400, "datatype 'FP99' is not one of"),
    # Found by the v2_json fuzz harness (tests/fuzz/corpus/v2_json/finding-datatype-list-typeerror): a 500.
    ({"json": {"inputs": [{**images_input(RED), "datatype": ["BYTES"]}]}}, 400, "datatype ['BYTES'] is not one of"),
    ({"json": {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 8, 8, 3], "data": [0] * 10}]}}, 400, "10 values do not fill shape"),
    ({"json": {"inputs": [{**images_input(RED), "name": "photo"}]}}, 400, "unknown input 'photo'"),
    ({"json": {"inputs": [images_input(RED)], "outputs": [{"name": "logits"}]}}, 400, "unknown output 'logits'"),
    ({"json": {"inputs": [images_input(RED)], "outputs": [{"name": "probabilities", "parameters": {"classification": 0}}]}}, 400, "between 1 and 3"),
    ({"json": {"inputs": [images_input(RED)], "outputs": [{"name": "probabilities", "parameters": {"classification": 4}}]}}, 400, "got 4"),
    (
        {"json": {"inputs": [images_input(RED)], "outputs": [{"name": "probabilities", "parameters": {"classification": "2"}}]}},
        400,
        "must be an integer",
    ),
    ({"json": {"inputs": [images_input()]}}, 400, "holds no images"),
    ({"json": {"inputs": [images_input(b"not an image")]}}, 400, "the image"),
    ({"json": {"inputs": [images_input(RED), images_input(RED)]}}, 400, "exactly one input"),
    ({"json": {"inputs": []}}, 400, '"inputs"'),
    ({"json": {"inputs": [{**images_input(RED), "data": ["***"]}]}}, 400, "not valid base64"),
    ({"content": b"{not json"}, 400, "malformed JSON"),
    ({"content": b'{"inputs": []}', "headers": {"Inference-Header-Content-Length": "999"}}, 400, "runs past the 14-byte body"),
    ({"content": b'{"inputs": []}', "headers": {"Inference-Header-Content-Length": "ten"}}, 400, "must be the JSON header's length"),
    (
        binary_request({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 500}}]}, b"x" * 20),
        400,
        "binary_data_size 500 runs past the binary data",
    ),
    (
        binary_request({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 8}}]}, b"\xff\0\0\0abcd"),
        400,
        "runs past the raw data",
    ),
    (binary_request({"inputs": [images_input(RED)]}, b"trailing"), 400, "8 bytes of binary data follow"),
]


@pytest.mark.parametrize("kwargs,status,words", HTTP_BAD)
def test_bad_infer_requests_over_http(http, kwargs, status, words):
    response = http.post(INFER, **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert http.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize(
    "path,words", [("/v2/models/nope/infer", "model 'nope' is not served"), ("/v2/models/tiny/versions/5/infer", "has no version 5")]
)
def test_unknown_models_and_versions_get_404(http, path, words):
    response = http.post(path, json={"inputs": [images_input(RED)]})
    assert response.status_code == 404 and words in response.json()["error"]


def test_oversized_bodies_and_batches_get_413(make_state):
    make_state(max_body_bytes=2000, max_batch=2)
    with TestClient(app) as client:
        big = client.post(INFER, json={"inputs": [images_input(b"x" * 3000)]})
        assert big.status_code == 413 and "over the limit of 2000 bytes" in big.json()["error"]
        many = client.post(INFER, json={"inputs": [images_input(RED, RED, RED)]})
        assert many.status_code == 413 and "over the limit of 2 per request" in many.json()["error"]


def test_tokens_guard_v2_but_not_its_health(make_state):
    make_state(tokens=(TOKEN,))
    with TestClient(app) as client:
        assert client.get("/v2/health/live").status_code == 200 and client.get("/v2/health/ready").status_code == 200
        for method, path in (("GET", "/v2"), ("GET", "/v2/models/tiny"), ("GET", "/v2/models/tiny/ready"), ("POST", INFER)):
            assert client.request(method, path).status_code == 401, path
        allowed = client.post(INFER, json={"inputs": [images_input(RED)]}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200


def test_ready_turns_503_while_draining(make_state):
    state = make_state()
    with TestClient(app) as client:
        state.draining = True
        assert client.get("/v2/health/ready").status_code == 503
        refused = client.post(INFER, json={"inputs": [images_input(RED)]})
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]


# --- gRPC ---------------------------------------------------------------------------------------


def call(channel, method: str, request, metadata=()):
    response_class = message(f"inference.{method}Response")
    return channel.unary_unary(SERVICE + method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_class.FromString)(
        request, metadata=metadata
    )


def infer_request(**fields):
    return message("inference.ModelInferRequest")(**fields)


def tensor(**fields):
    return message("inference.ModelInferRequest.InferInputTensor")(**fields)


def classification(k: int):
    return message("inference.ModelInferRequest.InferRequestedOutputTensor")(
        name="probabilities", parameters={"classification": message("inference.InferParameter")(int64_param=k)}
    )


def test_health_and_metadata_over_grpc(make_state):
    async def body(channel):
        live = await call(channel, "ServerLive", message("inference.ServerLiveRequest")())
        ready = await call(channel, "ServerReady", message("inference.ServerReadyRequest")())
        model_ready = await call(
            channel, "ModelReady", message("inference.ModelReadyRequest")(name="tiny", version="1"), [("authorization", f"Bearer {TOKEN}")]
        )
        server = await call(channel, "ServerMetadata", message("inference.ServerMetadataRequest")(), [("authorization", f"Bearer {TOKEN}")])
        metadata = await call(
            channel, "ModelMetadata", message("inference.ModelMetadataRequest")(name="tiny"), [("authorization", f"Bearer {TOKEN}")]
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(channel, "ServerMetadata", message("inference.ServerMetadataRequest")())
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await call(channel, "ModelReady", message("inference.ModelReadyRequest")(name="nope"), [("authorization", f"Bearer {TOKEN}")])
        return live, ready, model_ready, server, metadata, refused.value, unknown.value

    live, ready, model_ready, server, metadata, refused, unknown = run_with_grpc(make_state(tokens=(TOKEN,)), body)
    assert live.live and ready.ready and model_ready.ready
    assert server.name == "imgclf" and "classification" in server.extensions
    assert (metadata.name, list(metadata.versions), metadata.platform) == ("tiny", ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("images", "BYTES", [-1]), ("pixels", "FP32", [-1, 8, 8, 3])]
    assert [(t.name, list(t.shape)) for t in metadata.outputs] == [("probabilities", [-1, 3])]
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and "model 'nope' is not served" in unknown.details()


def test_model_infer_raw_and_typed_contents(make_state):
    pixels = solid(2, (8, 8)).astype("<f4")

    async def body(channel):
        raw = await call(
            channel,
            "ModelInfer",
            infer_request(
                model_name="tiny",
                id="g-1",
                inputs=[tensor(name="images", datatype="BYTES", shape=[2])],
                raw_input_contents=[length_prefixed(RED, GREEN)],
                outputs=[classification(1)],
            ),
        )
        typed = await call(
            channel,
            "ModelInfer",
            infer_request(
                model_name="tiny",
                model_version="1",
                inputs=[tensor(name="pixels", datatype="FP32", shape=[1, 8, 8, 3], contents={"fp32_contents": pixels.reshape(-1).tolist()})],
            ),
        )
        typed_images = await call(
            channel,
            "ModelInfer",
            infer_request(model_name="tiny", inputs=[tensor(name="images", datatype="BYTES", shape=[1], contents={"bytes_contents": [BLUE]})]),
        )
        return raw, typed, typed_images

    raw, typed, typed_images = run_with_grpc(make_state(), body)
    assert (raw.id, raw.model_name, raw.model_version) == ("g-1", "tiny", "1")
    assert (raw.outputs[0].datatype, list(raw.outputs[0].shape)) == ("BYTES", [2, 1])
    (payload,) = raw.raw_output_contents
    assert [s.split(":", 1)[1] for s in elements(payload)] == ["0:red", "1:green"]
    assert not typed.raw_output_contents and list(typed.outputs[0].shape) == [1, 3]
    assert int(np.argmax(typed.outputs[0].contents.fp32_contents)) == 2
    assert int(np.argmax(typed_images.outputs[0].contents.fp32_contents)) == 2


GRPC_BAD = [
    (dict(inputs=[tensor(name="images", datatype="FP32", shape=[1], contents={"fp32_contents": [1.0]})]), "INVALID_ARGUMENT", "must be BYTES"),
    (
        dict(inputs=[tensor(name="pixels", datatype="INT32", shape=[1, 2, 2, 3], contents={"int_contents": [0] * 12})]),
        "INVALID_ARGUMENT",
        "UINT8 or FP32",
    ),
    (
        dict(inputs=[tensor(name="pixels", datatype="FP32", shape=[1, 8, 8, 3])], raw_input_contents=[b"\0" * 12]),
        "INVALID_ARGUMENT",
        "do not fill shape",
    ),
    (
        dict(inputs=[tensor(name="photo", datatype="BYTES", shape=[1], contents={"bytes_contents": [RED]})]),
        "INVALID_ARGUMENT",
        "unknown input 'photo'",
    ),
    (
        dict(inputs=[tensor(name="images", datatype="BYTES", shape=[1], contents={"bytes_contents": [RED]})], outputs=[{"name": "logits"}]),
        "INVALID_ARGUMENT",
        "unknown output 'logits'",
    ),
    (
        dict(inputs=[tensor(name="images", datatype="BYTES", shape=[1], contents={"bytes_contents": [RED]})], outputs=[classification(9)]),
        "INVALID_ARGUMENT",
        "between 1 and 3",
    ),
    (dict(inputs=[tensor(name="images", datatype="BYTES", shape=[0])]), "INVALID_ARGUMENT", "holds no images"),
    (dict(inputs=[tensor(name="images", datatype="BYTES", shape=[1])], raw_input_contents=[b"\x09\0\0\0abc"]), "INVALID_ARGUMENT", "runs past"),
    (dict(inputs=[tensor(name="images", datatype="BYTES", shape=[1])], raw_input_contents=[b"a", b"b"]), "INVALID_ARGUMENT", "2 entries for 1"),
    (dict(model_name="nope", inputs=[tensor(name="images", datatype="BYTES", shape=[1])]), "NOT_FOUND", "model 'nope' is not served"),
    (dict(model_version="3", inputs=[tensor(name="images", datatype="BYTES", shape=[1])]), "NOT_FOUND", "has no version 3"),
]


def test_bad_model_infer_requests_over_grpc(make_state):
    async def body(channel):
        codes = []
        for fields, _, _ in GRPC_BAD:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(channel, "ModelInfer", infer_request(**{"model_name": "tiny", **fields}))
            codes.append((caught.value.code().name, caught.value.details()))
        alive = await call(channel, "ServerReady", message("inference.ServerReadyRequest")())
        return codes, alive

    codes, alive = run_with_grpc(make_state(), body)
    for (code, details), (_, expected_code, words) in zip(codes, GRPC_BAD):
        assert code == expected_code and words in details, (code, details, words)
    assert alive.ready


def test_oversized_model_infer_is_refused(make_state):
    async def body(channel):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(
                channel,
                "ModelInfer",
                infer_request(model_name="tiny", inputs=[tensor(name="images", datatype="BYTES", shape=[1])], raw_input_contents=[b"x" * 5000]),
            )
        return caught.value

    error = run_with_grpc(make_state(max_body_bytes=2000), body)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
