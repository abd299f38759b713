"""The running service answers over HTTP, gRPC and both TensorFlow Serving APIs, and every
protocol gives the same classes for the same image bytes as the shared decode + resize + ONNX."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import numpy as np
import pytest

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.serving.helpers import assert_same, b64, exported, pairs, reference, tiny_imagenet_jpegs
from training.interface import preprocessing

pytestmark = pytest.mark.slow

TASK1 = "tinyimagenet-cnn"


@pytest.fixture(scope="module")
def jpegs(real_data_dir):
    return tiny_imagenet_jpegs(real_data_dir, 8)


def test_http_classify_multipart_json_and_raw_body_match_the_reference(server, jpegs):
    expected = reference(TASK1, jpegs, top_k=3)
    files = [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(jpegs)]
    multipart = httpx.post(f"{server.http}/classify", files=files, data={"model": TASK1, "top_k": "3"}, timeout=30)
    assert multipart.status_code == 200, multipart.text
    body = multipart.json()
    assert (body["model"], body["version"]) == (TASK1, 1)
    assert_same(pairs(body["predictions"]), expected)
    names = json.loads((exported(TASK1) / "labels.json").read_text())
    first = body["predictions"][0][0]
    assert first["name"] == names["class_names"][first["class_index"]] and first["label"].startswith("n")
    as_json = httpx.post(f"{server.http}/classify", json={"images": [b64(d) for d in jpegs], "model": TASK1, "top_k": 3}, timeout=30)
    assert as_json.status_code == 200, as_json.text
    assert_same(pairs(as_json.json()["predictions"]), expected)
    raw = httpx.post(f"{server.http}/classify?model={TASK1}&top_k=3", content=jpegs[0], headers={"content-type": "image/jpeg"}, timeout=30)
    assert raw.status_code == 200, raw.text
    assert_same(pairs(raw.json()["predictions"]), expected[:1])


def test_default_model_and_top_k(server, jpegs):
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(jpegs[0])]}, timeout=30).json()
    assert response["model"] == "digits-cnn" and len(response["predictions"][0]) == 5
    assert_same(pairs(response["predictions"]), reference("digits-cnn", jpegs[:1]))


def test_http_predict_takes_pixel_arrays_of_any_size_and_channels(server, jpegs):
    from training.interface.preprocessing import decode_image

    image = decode_image(jpegs[0])  # 64x64x3 uint8: the server resizes it to 32x32.
    grey = image.mean(axis=2).round().astype(np.uint8)
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    response = httpx.post(f"{server.http}/predict", json={"model": TASK1, "pixels": [image.tolist(), grey.tolist(), rgba.tolist()]}, timeout=30)
    assert response.status_code == 200, response.text
    probabilities = np.array(response.json()["probabilities"])
    assert probabilities.shape == (3, 200)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # RGBA with opaque alpha is the RGB image: same answer.
    np.testing.assert_allclose(probabilities[0], probabilities[2], atol=1e-6)
    top = [(label, score) for label, score in reference(TASK1, jpegs[:1], top_k=1)[0]]
    assert json.loads((exported(TASK1) / "labels.json").read_text())["class_ids"][int(probabilities[0].argmax())] == top[0][0]


def test_models_endpoints_describe_the_served_models(server):
    listed = httpx.get(f"{server.http}/models", timeout=10).json()
    assert listed["default"] == "digits-cnn"
    assert {m["name"] for m in listed["models"]} == {"digits-cnn", TASK1}
    one = httpx.get(f"{server.http}/models/{TASK1}", timeout=10).json()
    card = json.loads((exported(TASK1) / "model_card.json").read_text())
    assert one["versions"] == [1] and one["input_size"] == [32, 32] and one["num_classes"] == 200
    assert one["labels"][:3] == json.loads((exported(TASK1) / "labels.json").read_text())["class_ids"][:3]
    assert one["metrics"]["val_top1"] == card["metrics"]["val_top1"]
    assert "bilinear" in one["preprocessing"]["resize"] and one["runtime"] == "onnxruntime"


def test_tf_serving_rest_api(server, jpegs):
    expected = reference(TASK1, jpegs[:2])
    body = {"signature_name": "classify", "instances": [{"b64": b64(d)} for d in jpegs[:2]]}
    response = httpx.post(f"{server.http}/v1/models/{TASK1}:predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert_same([list(zip(row["label"], row["score"])) for row in rows], expected)
    versioned = httpx.post(f"{server.http}/v1/models/{TASK1}/versions/1:predict", json={"inputs": {"images": [{"b64": b64(jpegs[0])}]}}, timeout=30)
    assert versioned.status_code == 200 and versioned.json()["outputs"]["label"][0] == [label for label, _ in expected[0]]
    pixels = np.zeros((2, 32, 32, 3)).tolist()
    default = httpx.post(f"{server.http}/v1/models/{TASK1}:predict", json={"instances": pixels}, timeout=30).json()
    assert np.array(default["predictions"]).shape == (2, 200)
    status = httpx.get(f"{server.http}/v1/models/{TASK1}", timeout=10).json()
    assert status["model_version_status"][0] == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    metadata = httpx.get(f"{server.http}/v1/models/{TASK1}/metadata", timeout=10).json()
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["pixels"]["dtype"] == "DT_FLOAT"
    assert signatures["classify"]["inputs"]["images"]["dtype"] == "DT_STRING"
    missing = httpx.get(f"{server.http}/v1/models/nothing", timeout=10)
    assert missing.status_code == 404 and "not served" in missing.json()["error"]


def test_metadata_lists_the_same_signatures_as_the_saved_model(server):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported(TASK1)))
    metadata = httpx.get(f"{server.http}/v1/models/{TASK1}/metadata", timeout=10).json()
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == set(loaded.signatures)
    for name, function in loaded.signatures.items():
        assert set(signatures[name]["inputs"]) == set(function.structured_input_signature[1])
        assert set(signatures[name]["outputs"]) == set(function.structured_outputs)


def test_grpc_classify_stream_list_and_metadata(server, jpegs):
    expected = reference(TASK1, jpegs, top_k=2)
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        response = stub.Classify(pb.ClassifyRequest(model_spec=pb.ModelSpec(name=TASK1), images=jpegs, top_k=2, request_id="r1"), timeout=30)
        assert (response.model_spec.name, response.model_spec.version, response.request_id) == (TASK1, 1, "r1")
        assert_same([[(c.label, c.score) for c in image.classes] for image in response.results], expected)
        requests = [
            pb.ClassifyRequest(model_spec=pb.ModelSpec(name=TASK1), images=[data], top_k=2, request_id=str(i)) for i, data in enumerate(jpegs)
        ]
        requests.insert(3, pb.ClassifyRequest(images=[b"not an image"], request_id="bad"))
        answers = list(stub.ClassifyStream(iter(requests), timeout=60))
        assert [a.request_id for a in answers] == [r.request_id for r in requests]
        assert "not an image" in answers[3].error
        good = [a for a in answers if a.request_id != "bad"]
        assert_same([[(c.label, c.score) for c in a.results[0].classes] for a in good], expected)
        arrays = stub.Classify(
            pb.ClassifyRequest(
                model_spec=pb.ModelSpec(name=TASK1),
                top_k=1,
                arrays=[
                    pb.PixelArray(
                        shape=[64, 64, 3],
                        uint8_values=preprocessing.decode_image(jpegs[0]).tobytes(),
                    )
                ],
            ),
            timeout=30,
        )
        assert arrays.results[0].classes[0].label == expected[0][0][0]
        listed = stub.ListModels(pb.ListModelsRequest(), timeout=10)
        assert listed.default_model == "digits-cnn" and {m.name for m in listed.models} == {"digits-cnn", TASK1}
        meta = stub.GetModelMetadata(pb.GetModelMetadataRequest(model_spec=pb.ModelSpec(name=TASK1)), timeout=10)
        assert (meta.input_height, meta.input_width, meta.num_classes, len(meta.labels)) == (32, 32, 200, 200)
        assert "bilinear" in meta.resize and "val_top1" in meta.metrics


def test_grpc_health_and_reflection(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "imgclf.v1.ClassifierService", "tensorflow.serving.PredictionService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(
            reflection.ServerReflectionInfo(
                iter(
                    [
                        reflection_pb2.ServerReflectionRequest(list_services=""),
                        reflection_pb2.ServerReflectionRequest(file_containing_symbol="tensorflow.serving.PredictionService"),
                    ]
                ),
                timeout=10,
            )
        )
        services = {s.name for s in answers[0].list_services_response.service}
        assert {"imgclf.v1.ClassifierService", "tensorflow.serving.PredictionService", "grpc.health.v1.Health"} <= services
        assert answers[1].file_descriptor_response.file_descriptor_proto


def test_tensorflow_serving_client_works_unchanged(server, jpegs):
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    expected = reference(TASK1, jpegs[:3])
    with grpc.insecure_channel(server.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = TASK1, "classify"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(jpegs[:3]))
        response = stub.Predict(request, timeout=30)
        labels = tf.make_ndarray(response.outputs["label"])
        scores = tf.make_ndarray(response.outputs["score"])
        assert_same([[(label.decode(), s) for label, s in zip(row_l, row_s)] for row_l, row_s in zip(labels, scores)], expected)
        assert response.model_spec.version.value == 1
        pixels = predict_pb2.PredictRequest()
        pixels.model_spec.name = TASK1
        pixels.model_spec.version.value = 1
        pixels.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 50, 40, 3), np.float32)))
        assert tf.make_ndarray(stub.Predict(pixels, timeout=30).outputs["probabilities"]).shape == (2, 200)
        meta_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        meta_request.model_spec.name = TASK1
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(meta_request, timeout=10).metadata["signature_def"].Unpack(signature_map)
        assert signature_map.signature_def["classify"].inputs["images"].dtype == tf.string.as_datatype_enum
        assert signature_map.signature_def["serving_default"].inputs["pixels"].dtype == tf.float32.as_datatype_enum
        with pytest.raises(grpc.RpcError) as missing:
            request.model_spec.name = "nothing"
            stub.Predict(request, timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_64_concurrent_mixed_http_and_grpc_requests_are_all_correct(server, real_data_dir):
    jpegs = tiny_imagenet_jpegs(real_data_dir, 16)
    expected = reference(TASK1, jpegs, top_k=1)

    async def over_http(client, index):
        response = await client.post(f"{server.http}/classify", json={"images": [b64(jpegs[index % 16])], "model": TASK1, "top_k": 1})
        assert response.status_code == 200, response.text
        return [(e["label"], e["score"]) for e in response.json()["predictions"][0]]

    async def over_grpc(stub, index):
        response = await stub.Classify(pb.ClassifyRequest(model_spec=pb.ModelSpec(name=TASK1), images=[jpegs[index % 16]], top_k=1), timeout=60)
        return [(c.label, c.score) for c in response.results[0].classes]

    async def main():
        async with httpx.AsyncClient(timeout=60) as client, grpc.aio.insecure_channel(server.grpc) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            return await asyncio.gather(*[(over_http(client, i) if i % 2 else over_grpc(stub, i)) for i in range(64)])

    answers = asyncio.run(main())
    assert_same(answers, [expected[i % 16] for i in range(64)])


def test_prometheus_metrics_count_requests_per_model_protocol_and_outcome(server, jpegs):
    httpx.post(f"{server.http}/classify", json={"images": [b64(jpegs[0])], "model": TASK1}, timeout=30)
    httpx.post(f"{server.http}/classify", json={"images": [b64(b"junk")], "model": TASK1}, timeout=30)
    with grpc.insecure_channel(server.grpc) as channel:
        pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(model_spec=pb.ModelSpec(name=TASK1), images=jpegs[:2]), timeout=30)
    text = httpx.get(f"{server.http}/metrics", timeout=10).text
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("imgclf_")}
    assert values[f'imgclf_requests_total{{model="{TASK1}",outcome="ok",protocol="http"}}'] >= 1
    assert values[f'imgclf_requests_total{{model="{TASK1}",outcome="invalid_argument",protocol="http"}}'] >= 1
    assert values[f'imgclf_requests_total{{model="{TASK1}",outcome="ok",protocol="grpc"}}'] >= 1
    assert values[f'imgclf_images_total{{model="{TASK1}",protocol="grpc"}}'] >= 2
    assert values[f'imgclf_request_duration_seconds_count{{model="{TASK1}",protocol="http"}}'] >= 1
