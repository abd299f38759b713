"""Feedback in process: an image (or a recent request's image) and its correct label become an
image-folder dataset and a log line, on both protocols, with the limits, the quota, the token,
atomic writes across processes, and nothing lost when a writer is killed mid-write."""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from serving.core.feedback import FeedbackStore
from tests.conftest import ROOT
from tests.serving.conftest import TOKEN, encoded, run_with_grpc
from tests.tiny_model import solid

RED, GREEN = encoded(solid(0)), encoded(solid(1))


@pytest.fixture
def feedback_client(make_state, tmp_path):
    from starlette.testclient import TestClient

    from serving.http.app import app

    def make(**settings):
        state = make_state(feedback_root=str(tmp_path / "feedback"), **settings)
        return TestClient(app), state, tmp_path / "feedback"

    return make


def log_lines(root) -> list[dict]:
    path = root / "feedback.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.relative_to(root).parts[0].startswith("."))


def test_without_a_folder_feedback_is_refused_with_how_to_turn_it_on(http, make_state):
    answer = http.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue"})
    assert answer.status_code == 501 and "set IMGCLF_FEEDBACK_ROOT" in answer.json()["error"]

    async def body(channel):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.ClassifierServiceStub(channel).Feedback(pb.FeedbackRequest(image=RED, label="blue"))
        return caught.value

    error = run_with_grpc(make_state(), body)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED and "IMGCLF_FEEDBACK_ROOT" in error.details()


def test_an_image_and_its_label_become_a_folder_dataset_and_a_log_line(feedback_client):
    from training.data import image_folder

    client, _, root = feedback_client(tokens=(TOKEN,))
    auth = {"authorization": f"Bearer {TOKEN}"}
    with client:
        refused = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue"})
        stored_before = files(root)
        first = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue"}, headers=auth)
        again = client.post("/feedback", json={"image": __import__("base64").b64encode(RED).decode(), "label": "blue"}, headers=auth)
        other = client.post("/feedback?label=green", content=GREEN, headers={**auth, "content-type": "image/png"})
    assert refused.status_code == 401 and stored_before == []  # Tokens apply: nothing stored without one.
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["label"], body["predicted"], body["duplicate"], body["model"], body["version"]) == ("blue", "red", False, "tiny", 1)
    assert body["stored"] == f"blue/{body['sha256']}.png" and (root / body["stored"]).read_bytes() == RED
    assert again.json()["duplicate"] is True and other.json()["stored"].startswith("green/")
    assert files(root) == sorted([body["stored"], other.json()["stored"], "feedback.jsonl"])
    lines = log_lines(root)
    assert [(line["label"], line["predicted"], line["duplicate"], line["source"]) for line in lines] == [
        ("blue", "red", False, "image"),
        ("blue", "red", True, "image"),
        ("green", "green", False, "image"),
    ]
    assert all({"time", "model", "version", "score", "sha256", "file"} <= set(line) for line in lines)
    assert TOKEN not in (root / "feedback.jsonl").read_text()  # Never a token.
    dataset = image_folder.load(root, (8, 8))  # What `train --dataset folder` (and --extra-data) read.
    assert dataset.class_ids == ("blue", "green") and len(dataset.train) + len(dataset.validation) == 2


def test_feedback_can_name_a_recent_request_on_both_protocols(feedback_client):
    client, state, root = feedback_client()
    with client:
        classified = client.post("/classify", files=[("image", ("r.png", RED, "image/png")), ("image", ("g.png", GREEN, "image/png"))])
        request_id = classified.json()["request_id"]
        assert classified.headers["x-request-id"] == request_id
        named = client.post("/feedback", json={"request_id": request_id, "index": 1, "label": "blue"})
        unknown = client.post("/feedback", json={"request_id": "nope", "label": "blue"})
        both = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue", "request_id": request_id})
        out_of_range = client.post("/feedback", json={"request_id": request_id, "index": 2, "label": "blue"})
    assert named.status_code == 200, named.text
    assert (named.json()["predicted"], (root / named.json()["stored"]).read_bytes()) == ("green", GREEN)
    assert log_lines(root)[-1]["source"] == "request_id"
    assert unknown.status_code == 400 and "request_id 'nope' is not one of this worker's last 256 predictions" in unknown.json()["error"]
    assert both.status_code == 400 and "not both" in both.json()["error"]
    assert out_of_range.status_code == 400 and "index must be between 0 and 1" in out_of_range.json()["error"]

    async def body(channel):
        stub = pb_grpc.ClassifierServiceStub(channel)
        answer = await stub.Classify(pb.ClassifyRequest(images=[RED]))
        return await stub.Feedback(pb.FeedbackRequest(request_id=answer.server_request_id, label="green"))

    reply = run_with_grpc(state, body)
    assert (reply.label, reply.predicted, reply.model_spec.name) == ("green", "red", "tiny") and reply.stored.startswith("green/")


@pytest.mark.parametrize(
    "label,words",
    [
        ("purple", "label 'purple' is not one of the 3 class ids of tiny (red, green, blue)"),
        ("../../etc", "label '../../etc' is not one of the 3 class ids of tiny"),
        ("", 'feedback needs "label"'),
    ],
)
def test_a_label_outside_the_models_is_refused_and_nothing_is_written(feedback_client, label, words):
    client, _, root = feedback_client()
    with client:
        answer = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": label})
    assert answer.status_code == 400 and words in answer.json()["error"]
    assert files(root) == []


def test_the_image_limit_and_the_quota_are_named_and_nothing_is_written(feedback_client, make_state):
    client, _, root = feedback_client(feedback_max_image_bytes=len(RED) - 1)
    with client:
        large = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue"})
        text = client.post("/feedback", files={"image": ("a.txt", b"hello", "text/plain")}, data={"label": "blue"})
    assert large.status_code == 413 and "IMGCLF_FEEDBACK_MAX_IMAGE_BYTES" in large.json()["error"]
    assert text.status_code == 400 and "not an image" in text.json()["error"]
    client, state, root = feedback_client(feedback_quota_bytes=len(RED) + len(GREEN) // 2)
    with client:
        stored = client.post("/feedback", files={"image": ("a.png", RED, "image/png")}, data={"label": "blue"})
        full = client.post("/feedback", files={"image": ("g.png", GREEN, "image/png")}, data={"label": "blue"})
    assert stored.status_code == 200
    assert full.status_code == 507 and "quota of" in full.json()["error"] and "IMGCLF_FEEDBACK_QUOTA_BYTES" in full.json()["error"]
    assert files(root) == sorted([stored.json()["stored"], "feedback.jsonl"]) and (root / stored.json()["stored"]).read_bytes() == RED

    async def body(channel):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.ClassifierServiceStub(channel).Feedback(pb.FeedbackRequest(image=GREEN, label="blue"))
        return caught.value

    error = run_with_grpc(state, body)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "IMGCLF_FEEDBACK_QUOTA_BYTES" in error.details()


def _store_many(root: str, seed: int) -> None:
    store = FeedbackStore(root, 1 << 20, 1 << 30)
    rng = np.random.default_rng(seed % 2)  # Two writers of each image set: the same files from two processes.
    for index in range(15):
        picture = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        stored, digest, duplicate = store.store(encoded(picture), ["red", "green", "blue"][index % 3])
        store.log({"writer": seed, "index": index, "file": stored, "duplicate": duplicate})


def test_writers_in_several_processes_store_whole_files_and_whole_lines(tmp_path):
    import hashlib

    root = tmp_path / "feedback"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_store_many, args=(str(root), seed)) for seed in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    stored = [p for p in root.rglob("*.png")]
    assert len(stored) == 30  # Two distinct sets of 15, each written by two processes.
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.stem for p in stored)  # No torn file.
    lines = log_lines(root)
    assert len(lines) == 60 and sorted((line["writer"], line["index"]) for line in lines) == [(w, i) for w in range(4) for i in range(15)]
    assert list((root / ".tmp").iterdir()) == []


KILLED_WRITER = """
import os, sys, time
from serving.core import feedback
store = feedback.FeedbackStore(sys.argv[1], 1 << 20, 1 << 30)
store.store(open(sys.argv[2], "rb").read(), "red")
def stuck(source, target):
    print("writing", flush=True)
    time.sleep(60)
feedback.os.replace = stuck  # The second image is written to its temporary file, then the writer hangs.
store.store(open(sys.argv[3], "rb").read(), "blue")
"""


def test_a_writer_killed_mid_write_loses_nothing_already_stored(tmp_path):
    from training.data import image_folder

    root = tmp_path / "feedback"
    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "green.png").write_bytes(GREEN)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), str(tmp_path / "red.png"), str(tmp_path / "green.png")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert [p.parent.name for p in root.rglob("*.png")] == ["red"]  # Only the finished image is in a class folder.
    assert [p.stat().st_size for p in (root / ".tmp").iterdir() if p.is_file()] == [len(GREEN)]  # The unfinished one stayed in .tmp.
    assert next(root.rglob("*.png")).read_bytes() == RED
    dataset = image_folder.load(root, (8, 8))
    assert dataset.class_ids == ("red",) and not dataset.skipped


def test_low_confidence_images_are_collected_unlabelled(feedback_client):
    client, state, root = feedback_client(collect_below=0.5, collect_fraction=1.0)
    grey = encoded(np.full((10, 10, 3), 120, np.uint8))  # Every colour alike: a third each.
    with client:
        assert client.post("/classify", files=[("image", ("g.png", grey, "image/png")), ("image", ("r.png", RED, "image/png"))]).status_code == 200
    deadline = time.monotonic() + 10
    while not list((root / "_unlabelled").glob("*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.read_bytes() for p in (root / "_unlabelled").glob("*.png")] == [grey]  # Not the confident red one.
