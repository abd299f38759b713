"""The HTTP routes in process (Starlette's TestClient) over a tiny real ONNX model: every route's
parsing and error mapping, the token check, deadlines and the queue limit, in seconds.
The live tests (test_protocols.py, test_bad_input.py) prove the same against `bentoml serve`."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from serving.http.app import app
from tests.serving.conftest import TOKEN, encoded, opened_later
from tests.serving.helpers import b64
from tests.tiny_model import LABELS, NAMES, solid

RED, GREEN, BLUE = (encoded(solid(c)) for c in range(3))
PNG = {"Content-Type": "image/png"}


def top_labels(body: dict) -> list[str]:
    return [classes[0]["label"] for classes in body["predictions"]]


def test_classify_takes_multipart_files_with_options_in_the_form(http):
    response = http.post("/classify", files=[("image", ("r.png", RED, "image/png")), ("image", ("b.png", BLUE, "image/png"))], data={"top_k": "2"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"], top_labels(body)) == ("tiny", 1, ["red", "blue"])
    assert [len(classes) for classes in body["predictions"]] == [2, 2]
    first = body["predictions"][0][0]
    assert first["class_index"] == 0 and first["name"] == NAMES[0] and 0.5 < first["score"] <= 1


def test_classify_takes_json_base64_in_both_spellings(http):
    response = http.post("/classify", json={"images": [b64(GREEN), {"b64": b64(RED)}], "model": "tiny", "top_k": 3})
    assert response.status_code == 200, response.text
    assert top_labels(response.json()) == ["green", "red"]
    scores = [entry["score"] for entry in response.json()["predictions"][0]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-5


def test_classify_takes_a_raw_image_body_with_options_in_the_query(http):
    response = http.post("/classify?top_k=1&version=1", content=encoded(solid(2), "JPEG"), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    assert top_labels(response.json()) == ["blue"] and len(response.json()["predictions"][0]) == 1


def test_predict_resizes_arrays_of_any_size_and_returns_probability_rows(http):
    pixels = [solid(0, (3, 5)).tolist(), solid(1, (40, 9)).astype(float).tolist(), np.full((4, 4), 200).tolist()]
    response = http.post("/predict", json={"pixels": pixels})
    assert response.status_code == 200, response.text
    probabilities = np.array(response.json()["probabilities"])
    assert probabilities.shape == (3, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert list(probabilities[:2].argmax(axis=1)) == [0, 1]
    np.testing.assert_allclose(probabilities[2], 1 / 3, atol=1e-5)  # Grey: every channel alike.


def test_models_and_model_describe_the_served_model(http):
    listed = http.get("/models").json()
    assert listed["default"] == "tiny" and [m["name"] for m in listed["models"]] == ["tiny"]
    one = http.get("/models/tiny").json()
    assert (one["versions"], one["input_size"], one["labels"], one["names"]) == ([1], [8, 8], LABELS, NAMES)


def test_tf_serving_rest_row_and_column_formats(http):
    pixels = solid(2, (8, 8)).astype(float).tolist()
    rows = http.post("/v1/models/tiny:predict", json={"instances": [pixels]})
    assert rows.status_code == 200, rows.text
    assert np.argmax(rows.json()["predictions"][0]) == 2
    columns = http.post("/v1/models/tiny/versions/1:predict", json={"inputs": {"pixels": [pixels]}})
    assert columns.json()["outputs"] == rows.json()["predictions"]
    classified = http.post("/v1/models/tiny:predict", json={"instances": [{"b64": b64(RED)}, {"b64": b64(BLUE)}]})
    assert [p["label"][0] for p in classified.json()["predictions"]] == ["red", "blue"]
    assert set(classified.json()["predictions"][0]) == {"class_index", "label", "name", "score"}
    named = http.post("/v1/models/tiny:predict", json={"signature_name": "classify", "inputs": [{"b64": b64(GREEN)}]})
    assert named.json()["outputs"]["label"][0][0] == "green"
    assert len(named.json()["outputs"]["score"][0]) == 3


def test_tf_serving_rest_status_and_metadata_come_from_the_model_card(http, make_state):
    status = http.get("/v1/models/tiny").json()
    assert status["model_version_status"] == [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    metadata = http.get("/v1/models/tiny/versions/1/metadata").json()
    assert metadata["metadata"]["signature_def"]["signature_def"] == make_state.current.repository.get("tiny").card["signature_defs"]


@pytest.mark.parametrize(
    "method,path,kwargs,status,words",
    [
        ("post", "/classify", {"json": {"images": [b64(RED)], "model": "nope"}}, 404, "model 'nope' is not served"),
        ("post", "/classify", {"json": {"images": [b64(RED)], "version": 7}}, 404, "has no version 7"),
        ("post", "/classify", {"json": {"images": [b64(RED)], "top_k": 4}}, 400, "top_k must be between 1 and 3"),
        ("post", "/classify", {"json": {"images": ["***"]}}, 400, "images[0] is not valid base64"),
        ("post", "/classify", {"json": {"images": []}}, 400, "holds no images"),
        ("post", "/classify", {"json": {"pictures": []}}, 400, 'needs "images"'),
        ("post", "/classify", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
        ("post", "/classify", {"content": b""}, 400, "empty request"),
        ("post", "/classify", {"content": b"text", "headers": {"Content-Type": "image/png"}}, 400, "not an image"),
        ("post", "/predict", {"json": {"pixels": [[[1, 2], [3]]]}}, 400, "not a rectangular array"),
        ("post", "/predict", {"json": {"pixels": [[[300, 2], [3, 4]]]}}, 400, "outside 0-255"),
        ("post", "/predict", {"json": {"pixels": "no"}}, 400, 'needs "pixels"'),
        ("post", "/v1/models/tiny:predict", {"json": {"signature_name": "other", "instances": [[1]]}}, 400, "signature 'other' not found"),
        ("post", "/v1/models/tiny:predict", {"json": {"rows": []}}, 400, 'needs "instances"'),
        ("get", "/v1/models/tiny:predict", {}, 400, ":predict takes POST"),
        ("get", "/v1/models/tiny/versions/9", {}, 404, "has no version 9"),
        ("get", "/models/nope", {}, 404, "model 'nope' is not served"),
    ],
)
def test_bad_requests_get_their_status_and_a_message_naming_the_problem(http, method, path, kwargs, status, words):
    response = getattr(http, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert http.post("/classify", content=RED, headers=PNG).status_code == 200  # And the service still answers.


def test_bodies_over_the_limit_are_refused_with_413(make_state):
    make_state(max_body_bytes=1000, max_batch=2)
    with TestClient(app) as client:
        big = client.post("/classify", content=b"x" * 1001, headers={"Content-Type": "image/png"})
        assert big.status_code == 413 and "over the limit of 1000 bytes" in big.json()["error"]
        many = client.post("/classify", json={"images": [b64(RED)] * 3})
        assert many.status_code == 413 and "over the limit of 2 per request" in many.json()["error"]


def test_tokens_guard_every_route_but_the_page(make_state):
    make_state(tokens=(TOKEN,))
    with TestClient(app) as client:
        assert client.get("/ui").status_code == 200
        for headers, words in (
            ({}, "needs an API token"),
            ({"Authorization": "Basic abc"}, "must be 'Bearer TOKEN'"),
            ({"Authorization": "Bearer wrong-token-0123456789"}, "not valid"),
        ):
            for method, path in (("post", "/classify"), ("get", "/models"), ("get", "/v1/models/tiny"), ("post", "/admin/reload")):
                response = client.request(method.upper(), path, headers={**PNG, **headers}, content=RED)
                assert response.status_code == 401 and words in response.json()["error"], (path, response.text)
        allowed = client.post("/classify", content=RED, headers={**PNG, "Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and top_labels(allowed.json()) == ["red"]


def test_a_request_whose_deadline_passed_is_dropped_before_decoding(make_state):
    state = make_state(gate=True)
    state.gate.opened.set()
    with TestClient(app) as client:
        late = client.post("/classify", content=RED, headers={**PNG, "X-Request-Timeout": "0.000001"})
        assert late.status_code == 504 and "dropped, not run" in late.json()["error"]
        bad = client.post("/classify", content=RED, headers={**PNG, "X-Request-Timeout": "soon"})
        assert bad.status_code == 400 and "X-Request-Timeout must be a number" in bad.json()["error"]
    assert state.gate.calls == 0


def test_past_the_queue_limit_a_request_is_refused_at_once_with_retry_after(make_state):
    state = make_state(gate=True, queue_size=1)

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tiny") as client:
            first = asyncio.ensure_future(client.post("/classify", content=RED, headers=PNG))
            while not state.gate.entered.is_set():
                await asyncio.sleep(0.01)
            with opened_later(state.gate, 5):
                refused = await client.post("/classify", content=BLUE, headers=PNG)
                state.gate.opened.set()
                return await first, refused

    first, refused = asyncio.run(main())
    assert first.status_code == 200 and top_labels(first.json()) == ["red"]
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "overloaded" in refused.json()["error"] and "IMGCLF_QUEUE_SIZE" in refused.json()["error"]
    assert state.gate.calls == 1  # The refused request never reached the model.


def test_made_up_model_names_do_not_become_metric_series(http):
    from prometheus_client import generate_latest

    for name in ("no-such-model", "evil\u2028name\nwith lines"):
        assert http.post("/classify", params={"model": name}, json={"images": [b64(RED)]}).status_code == 404
    exposed = generate_latest().decode()
    assert "no-such-model" not in exposed and "evil" not in exposed
    assert 'imgclf_requests_total{model="-",outcome="not_found",protocol="http"}' in exposed


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data; boundary=cut", b'--cut\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + RED[:20]),
        ("application/json", b'{"images": ["' + b64(RED)[:20].encode()),
        ("image/png", RED[:20]),
    ],
)
def test_a_client_that_hangs_up_mid_upload_is_counted_as_cancelled_not_as_a_bad_request(make_state, content_type, body):
    from prometheus_client import REGISTRY

    state = make_state(gate=True)
    state.gate.opened.set()
    counted = {outcome: {"model": "-", "protocol": "http", "outcome": outcome} for outcome in ("cancelled", "invalid_argument", "internal")}
    before = {outcome: REGISTRY.get_sample_value("imgclf_requests_total", labels) or 0 for outcome, labels in counted.items()}
    # Half a body, then the client is gone: what uvicorn hands the app when the connection drops mid-upload.
    messages = [{"type": "http.request", "body": body, "more_body": True}, {"type": "http.disconnect"}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/classify",
        "raw_path": b"/classify",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", content_type.encode()), (b"host", b"tiny")],
        "client": ("127.0.0.1", 1234),
        "server": ("tiny", 80),
    }
    asyncio.run(app(scope, receive, send))
    after = {outcome: REGISTRY.get_sample_value("imgclf_requests_total", labels) or 0 for outcome, labels in counted.items()}
    assert after["cancelled"] - before["cancelled"] == 1, (after, before)
    assert after["invalid_argument"] == before["invalid_argument"] and after["internal"] == before["internal"]
    assert sent[0]["status"] == 499  # Nobody reads it, but the log shows why the request ended.
    assert state.gate.calls == 0
