"""The SDK's four flavours against the real running service: the same answers as each other and
as the exported model, typed results, and one exception family for both protocols."""

from __future__ import annotations

import asyncio
import io
import shutil
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from imgclf_client import (
    APIConnectionError,
    APITimeoutError,
    AsyncGrpcClient,
    AsyncHttpClient,
    ClassifyResult,
    GrpcClient,
    HttpClient,
    InvalidInputError,
    ModelNotFoundError,
    OverloadedError,
    RetryPolicy,
    UnavailableError,
)
from tests.clients.peers import closed_port, scripted_grpc, scripted_http, self_signed_certificate, silent_port
from tests.serving.helpers import assert_same, reference, tiny_imagenet_jpegs

pytestmark = pytest.mark.slow
TASK1 = "tinyimagenet-cnn"


@pytest.fixture(scope="module")
def jpegs(real_data_dir):
    return tiny_imagenet_jpegs(real_data_dir, 4)


def pairs(result: ClassifyResult):
    return [[(c.label, c.score) for c in classes] for classes in result.predictions]


def all_flavours(server, call):
    """`call(client)` with each of the four clients; async clients are awaited."""
    with HttpClient(server.http) as http, GrpcClient(server.grpc) as over_grpc:
        answers = {"http": call(http), "grpc": call(over_grpc)}

    async def both_async():
        async with AsyncHttpClient(server.http) as http, AsyncGrpcClient(server.grpc) as over_grpc:
            return await call(http), await call(over_grpc)

    answers["async http"], answers["async grpc"] = asyncio.run(both_async())
    return answers


def test_every_flavour_classifies_every_kind_of_image_input_alike(server, jpegs, tmp_path):
    path = tmp_path / "first.jpg"
    path.write_bytes(jpegs[0])
    decoded = Image.open(io.BytesIO(jpegs[1]))
    # PIL images and arrays travel as PNG of the decoded pixels: the same pixels as the JPEG.
    expected = reference(TASK1, [jpegs[0], jpegs[1], jpegs[2], jpegs[1], jpegs[3]], top_k=3)
    for flavour, result in all_flavours(
        server,
        lambda c: c.classify(
            [str(path), jpegs[1], io.BytesIO(jpegs[2]), decoded, np.asarray(Image.open(io.BytesIO(jpegs[3])))], model=TASK1, top_k=3
        ),
    ).items():
        assert isinstance(result, ClassifyResult), flavour
        assert (result.model, result.version, len(result)) == (TASK1, 1, 5), flavour
        assert_same(pairs(result), expected)
        assert result.top[0].label == expected[0][0][0] and result.top[0].name  # A readable name with the id.


def test_predict_models_model_and_health_agree_across_flavours(server, jpegs):
    pixels = np.asarray(Image.open(io.BytesIO(jpegs[0])).convert("RGB"))
    predicted = all_flavours(server, lambda c: c.predict([pixels, pixels.astype(np.float32)], model=TASK1))
    first = predicted["http"].probabilities
    assert first.shape == (2, 200) and np.allclose(first.sum(axis=1), 1, atol=1e-4)
    for flavour, result in predicted.items():
        assert (result.model, result.version) == (TASK1, 1), flavour
        np.testing.assert_allclose(result.probabilities, first, atol=1e-5, err_msg=flavour)

    listed = all_flavours(server, lambda c: c.models())
    described = all_flavours(server, lambda c: c.model(TASK1))
    health = all_flavours(server, lambda c: c.health())
    for flavour in listed:
        assert listed[flavour] == listed["http"], flavour
        assert described[flavour] == described["http"], flavour
        assert health[flavour].live and health[flavour].ready, flavour
    task1 = described["http"]
    assert task1.input_size == (32, 32) and task1.num_classes == 200 == len(task1.labels) == len(task1.names)
    assert task1.versions == [1] and task1.task == "task1" and "bilinear" in task1.preprocessing["resize"]
    assert [m.name for m in listed["http"]] == ["digits-cnn", TASK1] and listed["http"][0].default
    # The server resizes arrays with the same function as images: the same top class as the JPEG.
    assert task1.labels[int(first[0].argmax())] == reference(TASK1, [jpegs[0]])[0][0][0]


def test_predict_without_a_model_uses_the_default_model(server):
    pixels = np.full((20, 30, 3), 128, np.uint8)
    answers = all_flavours(server, lambda c: c.predict(pixels))
    for flavour, result in answers.items():
        assert result.model == "digits-cnn" and result.probabilities.shape == (1, 10), flavour
        np.testing.assert_allclose(result.probabilities, answers["http"].probabilities, atol=1e-5)


@pytest.mark.parametrize(
    "make_call, error, words",
    [
        (lambda c, tmp: c.classify(str(tmp / "missing.jpg")), InvalidInputError, "no such file"),
        (lambda c, tmp: c.classify(str(tmp)), InvalidInputError, "is a directory"),
        (lambda c, tmp: c.classify(str(tmp / "notes.txt")), InvalidInputError, "not an image"),
        (lambda c, tmp: c.classify(truncated_jpeg()), InvalidInputError, "cannot decode"),
        (lambda c, tmp: c.classify([]), InvalidInputError, "no images"),
        (lambda c, tmp: c.classify(object()), InvalidInputError, "must be a path, bytes"),
        (lambda c, tmp: c.classify([b"x", object()]), InvalidInputError, "image 1: expected a path"),
        (lambda c, tmp: c.classify(np.zeros((4, 4, 2))), InvalidInputError, "1, 3 or 4 channels"),
        (lambda c, tmp: c.classify(b"x", top_k=0), InvalidInputError, "top_k"),
        (lambda c, tmp: c.classify(tmp / "notes.txt", model="nope"), ModelNotFoundError, "'nope' is not served"),
        (lambda c, tmp: c.model("digits-cnn", version=7), ModelNotFoundError, "no version 7"),
        (lambda c, tmp: c.predict(np.full((4, 4, 3), np.nan), model=TASK1), InvalidInputError, "NaN"),
        (lambda c, tmp: c.predict(np.array([["a", "b"]]), model=TASK1), InvalidInputError, "must hold numbers"),
        (lambda c, tmp: c.predict(np.zeros((4, 4, 5)), model=TASK1), InvalidInputError, "has shape [4, 4, 5]"),
    ],
)
def test_bad_input_raises_the_family_error_with_the_servers_message(server, tmp_path, make_call, error, words):
    (tmp_path / "notes.txt").write_text("not an image at all")
    for flavour, outcome in all_flavours(server, lambda c: _caught(make_call, c, tmp_path)).items():
        assert isinstance(outcome, error), f"{flavour}: {outcome!r}"
        assert words in outcome.message, f"{flavour}: {outcome.message}"


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()[:400]


def _caught(make_call, client, tmp_path):
    try:
        answer = make_call(client, tmp_path)
    except Exception as error:  # noqa: BLE001 - the test looks at which one
        return error
    if asyncio.iscoroutine(answer):

        async def awaited():
            try:
                return await answer
            except Exception as error:  # noqa: BLE001
                return error

        return awaited()
    return answer


def test_an_unreachable_server_is_a_connection_error_after_bounded_retries():
    port = closed_port()
    retry = RetryPolicy(attempts=3, backoff=0.05)
    for client in (HttpClient(f"http://127.0.0.1:{port}", retries=retry), GrpcClient(f"127.0.0.1:{port}", retries=retry, timeout=5)):
        start = time.monotonic()
        with client, pytest.raises(APIConnectionError, match=f"cannot reach .*{port}"):
            client.classify(b"image")
        assert time.monotonic() - start < 10


def test_a_silent_server_times_out_instead_of_hanging():
    with silent_port() as port:
        for client in (HttpClient(f"http://127.0.0.1:{port}", timeout=0.5, retries=2), GrpcClient(f"127.0.0.1:{port}", timeout=0.5, retries=2)):
            start = time.monotonic()
            with client, pytest.raises(APITimeoutError):
                client.classify(b"image")
            assert time.monotonic() - start < 5  # One timeout: a timeout is not retried.
    with scripted_grpc([grpc.StatusCode.DEADLINE_EXCEEDED]) as (target, seen):
        with GrpcClient(target, retries=2) as client, pytest.raises(APITimeoutError):
            client.classify(b"image")
        assert len(seen) == 1  # A deadline is not retried.


def test_only_503_and_unavailable_are_retried_and_4xx_never():
    retry = RetryPolicy(attempts=4, backoff=0.01)
    ok = {"model": "m", "version": 3, "predictions": [[{"class_index": 0, "label": "a", "name": "A", "score": 1.0}]]}
    with scripted_http([503, 503, 200], ok) as (url, seen):
        with HttpClient(url, retries=retry) as client:
            assert client.classify(b"image").top[0].label == "a"
        assert len(seen) == 3
    with scripted_http([503], ok) as (url, seen):
        with HttpClient(url, retries=retry) as client, pytest.raises(UnavailableError, match="503"):
            client.classify(b"image")
        assert len(seen) == 4  # Bounded: the policy's attempts, then the error.
    for status, error in ((400, InvalidInputError), (404, ModelNotFoundError), (413, InvalidInputError)):
        with scripted_http([status], ok) as (url, seen):
            with HttpClient(url, retries=retry) as client, pytest.raises(error, match=f"scripted {status}"):
                client.classify(b"image")
            assert len(seen) == 1
    for codes, attempts, error in (
        ([grpc.StatusCode.UNAVAILABLE], 4, UnavailableError),
        ([grpc.StatusCode.CANCELLED], 4, UnavailableError),  # The server dropped the call (the SDK never cancels).
        ([grpc.StatusCode.INVALID_ARGUMENT], 1, InvalidInputError),
        ([grpc.StatusCode.NOT_FOUND], 1, ModelNotFoundError),
    ):
        with scripted_grpc(codes) as (target, seen):
            with GrpcClient(target, retries=retry) as client, pytest.raises(error, match="scripted"):
                client.classify(b"image")
            assert len(seen) == attempts


def test_overloads_are_retried_no_sooner_than_the_servers_hint():
    retry = RetryPolicy(attempts=3, backoff=0.01, max_backoff=2)
    ok = {"model": "m", "version": 3, "predictions": [[{"class_index": 0, "label": "a", "name": "A", "score": 1.0}]]}
    with scripted_http([503, 200], ok, error_headers={"Retry-After": "0.4"}) as (url, seen):
        with HttpClient(url, retries=retry) as client:
            assert client.classify(b"image").top[0].label == "a"
        assert len(seen) == 2 and seen[1]["_received"] - seen[0]["_received"] >= 0.4
    with scripted_http([503], ok, error_headers={"Retry-After": "0.2"}) as (url, seen):
        with HttpClient(url, retries=retry) as client, pytest.raises(OverloadedError, match="503") as caught:
            client.classify(b"image")
        assert len(seen) == 3 and caught.value.retry_after == 0.2
    exhausted = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    from protos.imgclf.v1 import classifier_pb2 as pb

    answer = pb.ClassifyResponse(
        model_spec=pb.ModelSpec(name="m", version=3),
        results=[pb.ImageClassifications(classes=[pb.Classification(class_index=0, label="a", name="A", score=1.0)])],
    ).SerializeToString()
    with scripted_grpc(exhausted + [grpc.StatusCode.OK], answer, trailing=(("retry-after", "0.3"),)) as (target, seen):
        with GrpcClient(target, retries=retry) as client:
            assert client.classify(b"image").top[0].label == "a"
        assert len(seen) == 2 and seen[1]["_received"] - seen[0]["_received"] >= 0.3
    with scripted_grpc(exhausted, trailing=(("retry-after", "0.1"),)) as (target, seen):
        with GrpcClient(target, retries=retry) as client, pytest.raises(OverloadedError, match="RESOURCE_EXHAUSTED"):
            client.classify(b"image")
        assert len(seen) == 3
    with scripted_grpc(exhausted) as (target, seen):  # Without the hint it is a request over a limit: never retried.
        with GrpcClient(target, retries=retry) as client, pytest.raises(InvalidInputError, match="RESOURCE_EXHAUSTED"):
            client.classify(b"image")
        assert len(seen) == 1


def test_tokens_and_custom_headers_reach_the_server_on_both_protocols():
    ok = {"model": "m", "version": 1, "predictions": [[{"class_index": 0, "label": "a", "name": "A", "score": 1.0}]]}
    with scripted_http([200], ok) as (url, seen):
        with HttpClient(url, token="s3cret", headers={"X-Request-Source": "tests"}) as client:
            client.classify(b"image")
        assert seen[0]["Authorization"] == "Bearer s3cret" and seen[0]["X-Request-Source"] == "tests"
    with scripted_grpc([grpc.StatusCode.OK]) as (target, seen):
        with GrpcClient(target, token="s3cret", metadata={"X-Request-Source": "tests"}) as client:
            client.classify(b"image")
        assert seen[0]["authorization"] == "Bearer s3cret" and seen[0]["x-request-source"] == "tests"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_a_ca_file_on_both_protocols(tmp_path):
    tls = self_signed_certificate(tmp_path)
    ok = {"model": "m", "version": 1, "predictions": [[{"class_index": 0, "label": "a", "name": "A", "score": 1.0}]]}
    with scripted_http([200], ok, tls=tls) as (url, seen):
        assert url.startswith("https://")
        with HttpClient(url, ca_file=tls[0], token="t") as client:
            assert client.classify(b"image").top[0].label == "a"
        with HttpClient(url, retries=0) as client, pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.classify(b"image")  # Not trusted without the CA file.
        assert len(seen) == 1
    with scripted_grpc([grpc.StatusCode.OK], tls=tls) as (target, seen):
        with GrpcClient(target, ca_file=tls[0], token="t") as client:
            assert client.classify(b"image").predictions == []  # The scripted peer answers an empty response.
        assert seen[0]["authorization"] == "Bearer t"


def test_a_missing_ca_file_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="cannot read the CA file /nowhere/ca.pem"):
        GrpcClient("localhost:1", ca_file="/nowhere/ca.pem")


def test_every_flavour_explains_an_image_alike_and_as_the_top_class(server, jpegs):
    from imgclf_client import ExplainResult

    top = reference(TASK1, [jpegs[0]], top_k=1)[0][0][0]
    answers = all_flavours(server, lambda c: c.explain(jpegs[0], model=TASK1))
    first = answers["http"]
    for flavour, result in answers.items():
        assert isinstance(result, ExplainResult), flavour
        assert (result.model, result.version, result.explained.label) == (TASK1, 1, top), flavour
        assert result.heatmap.shape == (8, 8) and (result.heatmap >= 0).all() and result.heatmap.sum() == pytest.approx(1, abs=1e-4)
        assert result.method["forward_passes"] == 65 and result.method["grid"] == [8, 8]
        np.testing.assert_allclose(result.heatmap, first.heatmap, atol=1e-5)  # One computation behind both protocols.
    chosen = all_flavours(server, lambda c: c.explain(jpegs[0], model=TASK1, class_index=3))
    assert {result.explained.class_index for result in chosen.values()} == {3}


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda c, jpeg: c.explain(jpeg, model=TASK1, class_index=10_000), "class_index must be between 0 and"),
        (lambda c, jpeg: c.explain(b"not an image", model=TASK1), "not an image"),
        (lambda c, jpeg: c.explain(jpeg, model=TASK1, class_index=-1), "class_index must be a whole number >= 0"),
        (lambda c, jpeg: c.explain([jpeg, jpeg], model=TASK1), "one image is explained at a time"),
    ],
)
def test_bad_explain_calls_raise_invalid_input_on_both_protocols(server, jpegs, call, words):
    with HttpClient(server.http) as http, GrpcClient(server.grpc) as over_grpc:
        for client in (http, over_grpc):
            with pytest.raises(InvalidInputError, match=words):
                call(client, jpegs[0])


def test_every_flavour_sends_feedback_and_the_server_stores_it(server, jpegs):
    from imgclf_client import FeedbackResult

    with HttpClient(server.http) as client:
        info = client.model(TASK1)
        answered = client.classify(jpegs[1], model=TASK1, top_k=1).top[0].label
    label = next(label for label in info.labels if label != answered)  # A correction: not what the model said.
    answers = all_flavours(server, lambda c: c.feedback(jpegs[1], label, model=TASK1))
    stored = {result.stored for result in answers.values()}
    assert len(stored) == 1 and stored.pop().startswith(f"{label}/")
    for flavour, result in answers.items():
        assert isinstance(result, FeedbackResult) and (result.model, result.label, result.predicted) == (TASK1, label, answered), flavour
    assert sum(not result.duplicate for result in answers.values()) <= 1  # One image, one file, however many times it is sent.
    assert (server.feedback_root / answers["http"].stored).read_bytes() == jpegs[1]
    # Naming a recent classify call instead of sending the image again (each client keeps its connection, so its worker).
    with HttpClient(server.http) as http, GrpcClient(server.grpc) as over_grpc:
        for client in (http, over_grpc):
            classified = client.classify([jpegs[2], jpegs[3]], model=TASK1)
            assert classified.request_id
            named = client.feedback(label=label, request_id=classified.request_id, index=1)
            assert (server.feedback_root / named.stored).read_bytes() == jpegs[3]


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda c, jpeg: c.feedback(jpeg, "not-a-class", model=TASK1), "label 'not-a-class' is not one of the 200 class ids"),
        (lambda c, jpeg: c.feedback(jpeg, "", model=TASK1), "label must be a class id"),
        (lambda c, jpeg: c.feedback(None, "n01443537", model=TASK1), "send the image or the request_id"),
        (lambda c, jpeg: c.feedback(b"not an image", "n01443537", model=TASK1), "not an image"),
    ],
)
def test_bad_feedback_raises_invalid_input_on_both_protocols(server, jpegs, call, words):
    with HttpClient(server.http) as http, GrpcClient(server.grpc) as over_grpc:
        for client in (http, over_grpc):
            with pytest.raises(InvalidInputError, match=words):
                call(client, jpegs[0])
