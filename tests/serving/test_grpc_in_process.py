"""The gRPC services in process (the worker's own grpc.aio server on a free port) over a tiny real
ONNX model: `imgclf.v1`, TensorFlow Serving's PredictionService, the token interceptor, health
and the queue limit, in seconds. The live tests prove the same against `bentoml serve`."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from serving.grpc import server as grpc_server
from serving.grpc.proto_pool import message
from tests.serving.conftest import TOKEN, encoded, opened_later, run_with_grpc
from tests.tiny_model import LABELS, NAMES, solid

RED, GREEN, BLUE = (encoded(solid(c)) for c in range(3))
DT_FLOAT, DT_STRING = 1, 7


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_classify_images_and_arrays(make_state):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        images = await stub.Classify(pb.ClassifyRequest(images=[RED, BLUE], top_k=2, request_id="r-1"))
        arrays = await stub.Classify(
            pb.ClassifyRequest(
                arrays=[
                    pb.PixelArray(shape=[5, 7, 3], uint8_values=solid(1, (5, 7)).tobytes()),
                    pb.PixelArray(shape=[3, 3], float_values=pb.FloatValues(values=[200.0] * 9)),
                ]
            )
        )
        return images, arrays

    images, arrays = run_with_grpc(make_state(), body)
    assert (images.model_spec.name, images.model_spec.version, images.request_id) == ("tiny", 1, "r-1")
    assert [[c.label for c in r.classes] for r in images.results] == [["red", "green"], ["blue", "red"]]
    assert images.results[0].classes[0].name == NAMES[0] and images.results[0].classes[0].class_index == 0
    assert [r.classes[0].label for r in arrays.results] == ["green", "red"]
    assert len(arrays.results[1].classes) == 3  # The default top-k, capped at the model's classes.


@pytest.mark.parametrize(
    "request_,code,words",
    [
        (pb.ClassifyRequest(images=[RED], arrays=[pb.PixelArray(shape=[2, 2])]), grpc.StatusCode.INVALID_ARGUMENT, "either images or arrays"),
        (pb.ClassifyRequest(images=[RED], model_spec=pb.ModelSpec(name="nope")), grpc.StatusCode.NOT_FOUND, "model 'nope' is not served"),
        (pb.ClassifyRequest(images=[RED], model_spec=pb.ModelSpec(version=4)), grpc.StatusCode.NOT_FOUND, "has no version 4"),
        (pb.ClassifyRequest(images=[RED], top_k=9), grpc.StatusCode.INVALID_ARGUMENT, "top_k must be between 1 and 3"),
        (pb.ClassifyRequest(images=[b"text"]), grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
        (pb.ClassifyRequest(), grpc.StatusCode.INVALID_ARGUMENT, "holds no images"),
        (
            pb.ClassifyRequest(arrays=[pb.PixelArray(shape=[2, 2], uint8_values=b"abc")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "holds 3 values, but its shape [2, 2] needs 4",
        ),
        (pb.ClassifyRequest(arrays=[pb.PixelArray(shape=[2, 2])]), grpc.StatusCode.INVALID_ARGUMENT, "holds no values"),
        (pb.ClassifyRequest(images=[RED] * 3), grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit of 2 per request"),
    ],
)
def test_bad_classify_requests_get_their_code_and_a_message(make_state, request_, code, words):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        error = await rpc_error(stub.Classify(request_))
        still = await stub.Classify(pb.ClassifyRequest(images=[GREEN]))
        return error, still

    error, still = run_with_grpc(make_state(max_batch=2), body)
    assert error.code() == code and words in error.details(), error.details()
    assert still.results[0].classes[0].label == "green"


def test_malformed_message_bytes_are_invalid_argument(make_state):
    async def body(channel):
        raw = channel.unary_unary("/imgclf.v1.ClassifierService/Classify")
        return await rpc_error(raw(b"\x12\xff\xff\xff"))

    error = run_with_grpc(make_state(), body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed imgclf.v1.ClassifyRequest" in error.details()


def test_classify_stream_answers_each_request_and_reports_errors_in_place(make_state):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        requests = [
            pb.ClassifyRequest(images=[RED], request_id="a"),
            pb.ClassifyRequest(images=[b"x"], request_id="b"),
            pb.ClassifyRequest(images=[BLUE], request_id="c"),
        ]
        return [response async for response in stub.ClassifyStream(iter(requests))]

    responses = run_with_grpc(make_state(), body)
    assert [r.request_id for r in responses] == ["a", "b", "c"]
    assert responses[0].results[0].classes[0].label == "red" and responses[2].results[0].classes[0].label == "blue"
    assert "not an image" in responses[1].error and not responses[1].results


def test_list_models_and_metadata(make_state):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        return await stub.ListModels(pb.ListModelsRequest()), await stub.GetModelMetadata(pb.GetModelMetadataRequest())

    listed, metadata = run_with_grpc(make_state(), body)
    assert listed.default_model == "tiny" and [m.name for m in listed.models] == ["tiny"]
    assert (metadata.name, metadata.version, list(metadata.labels), list(metadata.names)) == ("tiny", 1, LABELS, NAMES)
    assert (metadata.input_height, metadata.input_width, metadata.num_classes) == (8, 8, 3)


def _tensor(array: np.ndarray, dtype: int):
    tensor = message("tensorflow.TensorProto")(dtype=dtype)
    tensor.tensor_shape.dim.extend([message("tensorflow.TensorShapeProto.Dim")(size=size) for size in array.shape])
    if dtype == DT_STRING:
        tensor.string_val.extend(array.reshape(-1))
    else:
        tensor.tensor_content = array.astype("<f4").tobytes()
    return tensor


def _predict_request(name: str, tensor, signature: str = "", **spec):
    request = message("tensorflow.serving.PredictRequest")()
    request.model_spec.name, request.model_spec.signature_name = name, signature
    for key, value in spec.items():
        getattr(request.model_spec, key).value = value
    request.inputs["x"].CopyFrom(tensor)
    return request


def test_tf_serving_predict_both_signatures_and_metadata(make_state):
    state = make_state()

    async def body(channel):
        response_class = message("tensorflow.serving.PredictResponse")
        predict = channel.unary_unary(
            "/tensorflow.serving.PredictionService/Predict",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        pixels = np.stack([solid(2, (8, 8)), solid(0, (8, 8))]).astype(np.float32)
        probabilities = await predict(_predict_request("tiny", _tensor(pixels, DT_FLOAT)))
        classified = await predict(_predict_request("tiny", _tensor(np.array([GREEN], object), DT_STRING), version=1))
        errors = [
            await rpc_error(predict(_predict_request("tiny", _tensor(pixels, DT_FLOAT), "nope"))),
            await rpc_error(predict(_predict_request("tiny", _tensor(pixels, DT_FLOAT), "classify"))),
            await rpc_error(predict(_predict_request("other", _tensor(pixels, DT_FLOAT)))),
        ]
        label_request = _predict_request("tiny", _tensor(pixels, DT_FLOAT))
        label_request.model_spec.version_label = "stable"
        errors.append(await rpc_error(predict(label_request)))
        metadata_request = message("tensorflow.serving.GetModelMetadataRequest")(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "tiny"
        metadata = await channel.unary_unary(
            "/tensorflow.serving.PredictionService/GetModelMetadata",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message("tensorflow.serving.GetModelMetadataResponse").FromString,
        )(metadata_request)
        return probabilities, classified, errors, metadata

    probabilities, classified, errors, metadata = run_with_grpc(state, body)
    rows = np.frombuffer(probabilities.outputs["probabilities"].tensor_content, "<f4").reshape(2, 3)
    assert list(rows.argmax(axis=1)) == [2, 0] and probabilities.model_spec.signature_name == "serving_default"
    assert [v.decode() for v in classified.outputs["label"].string_val] == ["green", "red", "blue"]
    assert set(classified.outputs) == {"class_index", "label", "name", "score"}
    assert [e.code() for e in errors] == [INVALID, INVALID, grpc.StatusCode.NOT_FOUND, INVALID]
    assert "signature 'nope' not found" in errors[0].details() and "version labels are not supported" in errors[3].details()
    signature_map = message("tensorflow.serving.SignatureDefMap").FromString(metadata.metadata["signature_def"].value)
    recorded = state.repository.get("tiny").card["signature_defs"]
    assert json_format.MessageToDict(signature_map, preserving_proto_field_name=True)["signature_def"].keys() == recorded.keys()
    assert signature_map.signature_def["serving_default"].inputs["pixels"].name == recorded["serving_default"]["inputs"]["pixels"]["name"]


def test_tokens_guard_every_service_but_health(make_state):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        missing = await rpc_error(stub.Classify(pb.ClassifyRequest(images=[RED])))
        wrong = await rpc_error(stub.ListModels(pb.ListModelsRequest(), metadata=(("authorization", "Bearer wrong-token-0123456"),)))
        stream = await rpc_error(stub.ClassifyStream(iter([pb.ClassifyRequest(images=[RED])])).read())
        allowed = await stub.Classify(pb.ClassifyRequest(images=[RED]), metadata=(("authorization", f"Bearer {TOKEN}"),))
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        return missing, wrong, stream, allowed, health

    missing, wrong, stream, allowed, health = run_with_grpc(make_state(tokens=(TOKEN,)), body)
    assert [e.code() for e in (missing, wrong, stream)] == [grpc.StatusCode.UNAUTHENTICATED] * 3
    assert "needs an API token" in missing.details() and "not valid" in wrong.details()
    assert allowed.results[0].classes[0].label == "red"
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_past_the_queue_limit_a_call_is_refused_with_a_retry_hint(make_state):
    state = make_state(gate=True, queue_size=1)

    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        first = asyncio.ensure_future(stub.Classify(pb.ClassifyRequest(images=[RED])))
        while not state.gate.entered.is_set():
            await asyncio.sleep(0.01)
        with opened_later(state.gate, 5):
            refused = await rpc_error(stub.Classify(pb.ClassifyRequest(images=[BLUE])))
            state.gate.opened.set()
            return await first, refused

    first, refused = run_with_grpc(state, body)
    assert first.results[0].classes[0].label == "red"
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in refused.details()
    assert dict(refused.trailing_metadata())["retry-after"] == "1"
    assert state.gate.calls == 1


def test_predict_returns_every_probability_in_output_order(make_state):
    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        images = await stub.Predict(pb.PredictRequest(images=[RED, BLUE], request_id="p-1"))
        arrays = await stub.Predict(pb.PredictRequest(arrays=[pb.PixelArray(shape=[4, 6, 3], uint8_values=solid(1, (4, 6)).tobytes())]))
        classified = await stub.Classify(pb.ClassifyRequest(images=[RED, BLUE], top_k=3))
        errors = [
            await rpc_error(stub.Predict(pb.PredictRequest())),
            await rpc_error(stub.Predict(pb.PredictRequest(images=[RED], arrays=[pb.PixelArray(shape=[2, 2])]))),
            await rpc_error(stub.Predict(pb.PredictRequest(images=[RED], model_spec=pb.ModelSpec(name="nope")))),
            await rpc_error(stub.Predict(pb.PredictRequest(images=[b"text"]))),
        ]
        return images, arrays, classified, errors

    images, arrays, classified, errors = run_with_grpc(make_state(), body)
    rows = np.array([row.values for row in images.probabilities])
    assert rows.shape == (2, 3) and list(images.labels) == LABELS and images.request_id == "p-1"
    np.testing.assert_allclose(rows.sum(axis=1), 1, atol=1e-5)
    assert list(rows.argmax(axis=1)) == [0, 2] and (images.model_spec.name, images.model_spec.version) == ("tiny", 1)
    # The same numbers as Classify's, reordered by class.
    for row, result in zip(rows, classified.results):
        assert [round(row[c.class_index], 6) for c in result.classes] == [round(c.score, 6) for c in result.classes]
    assert np.argmax(arrays.probabilities[0].values) == 1
    assert [e.code() for e in errors] == [INVALID, INVALID, grpc.StatusCode.NOT_FOUND, INVALID]
    assert "holds no images" in errors[0].details() and "either images or arrays" in errors[1].details()


def test_the_sdk_predicts_in_one_call_and_falls_back_on_a_server_without_predict(make_state):
    """The SDK's gRPC `predict` calls Predict; against a server from before Predict existed
    (UNIMPLEMENTED) it asks Classify for every class instead, and gets the same numbers."""
    from imgclf_client import AsyncGrpcClient
    from serving.grpc import imgclf as grpc_classifier
    from serving.grpc.common import parsing, serialize

    state = make_state()
    pixels = [solid(0, (5, 5)), solid(2, (9, 3))]

    async def predict(port: int):
        async with AsyncGrpcClient(f"127.0.0.1:{port}", retries=0) as client:
            return await client.predict(pixels)

    async def main():
        current = await predict_with(grpc_server.start(state, 0))
        # An older server: the same servicer, without Predict.
        older = grpc.aio.server()
        servicer = grpc_classifier.ClassifierServicer(state)
        handlers = {
            "Classify": grpc.unary_unary_rpc_method_handler(parsing(servicer.Classify, pb.ClassifyRequest), response_serializer=serialize),
            "ListModels": grpc.unary_unary_rpc_method_handler(parsing(servicer.ListModels, pb.ListModelsRequest), response_serializer=serialize),
        }
        older.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(grpc_classifier.SERVICE_NAME, handlers),))
        port = older.add_insecure_port("127.0.0.1:0")
        await older.start()
        try:
            return current, await predict(port)
        finally:
            await older.stop(None)

    async def predict_with(starting):
        server = await starting
        try:
            return await predict(server.port)
        finally:
            await server.stop(None)

    current, fallback = asyncio.run(main())
    assert (current.model, current.version, current.probabilities.shape) == ("tiny", 1, (2, 3))
    assert list(current.probabilities.argmax(axis=1)) == [0, 2]
    np.testing.assert_allclose(fallback.probabilities, current.probabilities, atol=1e-6)
