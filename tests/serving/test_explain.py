"""Explanations in process (`POST /explain`, the `Explain` RPC) over tiny real ONNX models: the
heatmap falls where the model looks, its cost is the stated number of images in bounded model
calls, and bad requests get the refusals `/classify` gives, plus an out-of-range class_index."""

from __future__ import annotations

import base64

import grpc
import numpy as np
import pytest

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.serving.conftest import TOKEN, encoded, run_with_grpc
from tests.tiny_model import solid

RAW = {"content-type": "application/octet-stream"}
SIZE = (16, 16)
REGION = (slice(0, 8), slice(8, 16))  # The model sees only the top-right quadrant of its input.


def picture() -> bytes:
    """A 48x48 picture: red in its top-right quadrant (what the model sees), noise elsewhere."""
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    image[:24, 24:] = solid(0, (24, 24))
    return encoded(image)


def region_mass(heatmap: np.ndarray) -> float:
    rows, cols = heatmap.shape  # Cells of the grid map onto the 16x16 input: the quadrant is the top-right quarter of the cells.
    return float(heatmap[: rows // 2, cols // 2 :].sum())


@pytest.fixture
def region_state(make_state):
    return make_state(model_args={"size": SIZE, "region": REGION})


def test_the_heatmap_falls_on_the_region_the_model_looks_at(region_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    with TestClient(app) as client:
        answer = client.post("/explain", content=picture(), headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    heatmap = np.asarray(body["heatmap"])
    assert (body["model"], body["version"], body["class_index"], body["label"]) == ("tiny", 1, 0, "red")
    assert body["score"] > 0.9 and body["informative"] is True
    assert heatmap.shape == (8, 8) and (heatmap >= 0).all() and heatmap.sum() == pytest.approx(1)
    assert region_mass(heatmap) > 0.99
    assert body["method"] == {
        "name": "occlusion",
        "grid": [8, 8],
        "cell_pixels": [2, 2],
        "occluder": "grey (127.5)",
        "score": "drop in the class's probability, clipped at 0, normalised to sum 1",
        "forward_passes": 65,
    }

    async def rpc(channel):
        return await pb_grpc.ClassifierServiceStub(channel).Explain(pb.ExplainRequest(image=picture(), request_id="e-1"))

    reply = run_with_grpc(region_state, rpc)
    assert (reply.explained.label, reply.explained.class_index, reply.request_id) == ("red", 0, "e-1")
    assert (reply.heatmap_rows, reply.heatmap_cols, reply.method.forward_passes, reply.informative) == (8, 8, 65, True)
    np.testing.assert_allclose(np.asarray(reply.heatmap).reshape(8, 8), heatmap, atol=1e-6)  # One computation, two protocols.


def test_a_class_that_no_cell_supports_gets_a_uniform_map_marked_uninformative(region_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    # Greying the red quadrant raises green's score: no cell supports "green".
    with TestClient(app) as client:
        body = client.post("/explain?class_index=1", content=picture(), headers=RAW).json()
    assert (body["class_index"], body["label"], body["informative"]) == (1, "green", False)
    np.testing.assert_allclose(body["heatmap"], np.full((8, 8), 1 / 64))


def test_an_explanation_is_a_fixed_number_of_images_in_calls_no_larger_than_a_batch(make_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    state = make_state(model_args={"size": SIZE, "region": REGION}, max_batch=16, explain_grid=4)
    model = state.repository.get("tiny")
    calls = []
    for name in ("run", "run_alone"):
        run = getattr(model, name)
        if run is not None:
            setattr(model, name, lambda pixels, run=run: calls.append(len(pixels)) or run(pixels))
    with TestClient(app) as client:
        body = client.post("/explain", json={"image": base64.b64encode(picture()).decode()}).json()
    assert body["method"]["forward_passes"] == 17 and body["method"]["grid"] == [4, 4]
    assert sum(calls) == 17 and max(calls) <= 16  # Two queued model calls, not one of 17 images.
    assert region_mass(np.asarray(body["heatmap"])) > 0.99


@pytest.mark.parametrize(
    "kwargs,status,words",
    [
        ({"json": {"images": []}}, 400, "holds no images"),
        ({"json": {"images": ["UE5H"] * 2}}, 400, "an explanation is of one image; the request holds 2"),
        ({"content": b"not an image at all", "headers": RAW}, 400, "not an image"),
        ({"json": {"image": "%%%"}}, 400, "not valid base64"),
        ({"json": {"image": "UE5H", "class_index": 3}}, 400, "class_index must be between 0 and 2 (the classes of tiny), got 3"),
        ({"json": {"image": "UE5H", "class_index": -1}}, 400, "class_index must be between 0 and 2"),
        ({"json": {"image": "UE5H", "class_index": 1.5}}, 400, "class_index must be an integer, got 1.5"),
        ({"json": {"image": "UE5H", "class_index": True}}, 400, "class_index must be an integer, got True"),
        ({"params": {"class_index": "red"}, "content": b"x", "headers": RAW}, 400, "class_index must be an integer, got 'red'"),
        ({"params": {"model": "nope"}, "content": b"x", "headers": RAW}, 404, "model 'nope' is not served"),
        ({"params": {"version": "4"}, "content": b"x", "headers": RAW}, 404, "has no version 4"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "malformed JSON body"),
    ],
)
def test_bad_explain_requests_are_refused_by_name(http, kwargs, status, words):
    answer = http.post("/explain", **kwargs)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def test_explain_takes_the_form_fields_of_classify_and_the_token(make_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    make_state(model_args={"size": SIZE, "region": REGION}, tokens=(TOKEN,))
    with TestClient(app) as client:
        refused = client.post("/explain", content=picture(), headers=RAW)
        form = client.post(
            "/explain",
            files={"image": ("x.png", picture(), "image/png")},
            data={"class_index": "2"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    assert refused.status_code == 401
    assert form.status_code == 200 and form.json()["label"] == "blue"


@pytest.mark.parametrize(
    "request_,code,words",
    [
        (pb.ExplainRequest(), grpc.StatusCode.INVALID_ARGUMENT, "holds no images"),
        (pb.ExplainRequest(image=b"text"), grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
        (pb.ExplainRequest(image=b"text", class_index=3), grpc.StatusCode.INVALID_ARGUMENT, "class_index must be between 0 and 2"),
        (pb.ExplainRequest(image=b"text", class_index=-2), grpc.StatusCode.INVALID_ARGUMENT, "class_index must be between 0 and 2"),
        (pb.ExplainRequest(image=b"text", model_spec=pb.ModelSpec(name="nope")), grpc.StatusCode.NOT_FOUND, "model 'nope' is not served"),
    ],
)
def test_bad_explain_rpcs_get_their_code_and_a_message(make_state, request_, code, words):
    async def body(channel):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.ClassifierServiceStub(channel).Explain(request_)
        return caught.value

    error = run_with_grpc(make_state(), body)
    assert error.code() == code and words in error.details()
