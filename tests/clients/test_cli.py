"""The `imgclf` command against the real running service, over HTTP and gRPC."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imgclf_client import HttpClient
from tests.clients.peers import closed_port
from tests.serving.helpers import tiny_imagenet_jpegs

pytestmark = pytest.mark.slow
TASK1 = "tinyimagenet-cnn"


def imgclf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclf_client.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(real_data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-images")
    paths = []
    for index, data in enumerate(tiny_imagenet_jpegs(real_data_dir, 2)):
        paths.append(folder / f"image{index}.jpg")
        paths[-1].write_bytes(data)
    (folder / "notes.txt").write_text("not an image")
    return [str(p) for p in paths], str(folder / "notes.txt"), str(folder / "missing.jpg")


def test_classify_prints_a_table_and_json_that_match_the_sdk_over_both_protocols(server, images):
    good, _, _ = images
    with HttpClient(server.http) as client:
        expected = client.classify(good, model=TASK1, top_k=3)
    for where in (["--url", server.http], ["--grpc", server.grpc]):
        table = imgclf("classify", *good, *where, "--model", TASK1, "--top-k", "3")
        assert table.returncode == 0, table.stderr
        for path, classes in zip(good, expected.predictions):
            assert f"{path}  ({TASK1} v1)" in table.stdout
            for rank, c in enumerate(classes, start=1):
                assert f"{rank}. {c.score:7.2%}  {c.label:<12} {c.name}" in table.stdout
        as_json = imgclf("classify", *good, *where, "--model", TASK1, "--top-k", "3", "--json")
        assert as_json.returncode == 0, as_json.stderr
        answers = json.loads(as_json.stdout)
        assert [a["image"] for a in answers] == good
        for answer, classes in zip(answers, expected.predictions):
            assert [(c["label"], c["name"]) for c in answer["classes"]] == [(c.label, c.name) for c in classes]
            assert [c["score"] for c in answer["classes"]] == pytest.approx([c.score for c in classes], abs=1e-5)


def test_failed_images_get_one_line_each_and_the_rest_are_still_classified(server, images):
    good, not_an_image, missing = images
    for where in (["--url", server.http], ["--grpc", server.grpc]):
        run = imgclf("classify", good[0], not_an_image, missing, good[1], *where, "--model", TASK1)
        assert run.returncode == 1
        errors = run.stderr.strip().splitlines()
        assert len(errors) == 2, run.stderr
        assert errors[0].startswith(f"{not_an_image}: error:") and "not an image" in errors[0]
        assert errors[1].startswith(f"{missing}: error:") and "no such file" in errors[1]
        assert f"{good[0]}  ({TASK1} v1)" in run.stdout and f"{good[1]}  ({TASK1} v1)" in run.stdout


def test_models_lists_the_served_models(server):
    for where in (["--url", server.http], ["--grpc", server.grpc]):
        table = imgclf("models", *where)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:4] == ["model", "versions", "input", "classes"]
        assert lines[1].split()[:2] == ["digits-cnn", "*"] and lines[2].split()[0] == TASK1
        as_json = json.loads(imgclf("models", *where, "--json").stdout)
        assert [m["name"] for m in as_json] == ["digits-cnn", TASK1] and as_json[1]["num_classes"] == 200


def test_errors_exit_non_zero_with_the_servers_message(server, images):
    good, _, _ = images
    unknown = imgclf("classify", good[0], "--url", server.http, "--model", "nope")
    assert unknown.returncode == 1 and "model 'nope' is not served" in unknown.stderr
    port = closed_port()
    for where in (["--url", f"http://127.0.0.1:{port}"], ["--grpc", f"127.0.0.1:{port}"]):
        down = imgclf("classify", good[0], good[1], *where, "--retries", "1")
        assert down.returncode == 2 and down.stderr.count("\n") == 1 and "cannot reach" in down.stderr, down.stderr
        assert imgclf("models", *where, "--retries", "0").returncode == 2
    usage = imgclf("classify", good[0], "--url", server.http, "--grpc", server.grpc)
    assert usage.returncode == 2 and "not allowed with argument" in usage.stderr


def test_explain_writes_the_heatmap_over_the_image_over_both_protocols(server, images, tmp_path):
    import numpy as np
    from PIL import Image

    good, not_an_image, _ = images
    with HttpClient(server.http) as client:
        expected = client.explain(good[0], model=TASK1)
    original = np.asarray(Image.open(good[0]).convert("RGB"), np.float32)
    for where in (["--url", server.http], ["--grpc", server.grpc]):
        out = tmp_path / f"heat-{where[0].strip('-')}.png"
        run = imgclf("explain", good[0], "--out", str(out), *where, "--model", TASK1, "--json")
        assert run.returncode == 0, run.stderr
        answer = json.loads(run.stdout)
        assert answer["explained"]["label"] == expected.explained.label and answer["out"] == str(out)
        np.testing.assert_allclose(answer["heatmap"], expected.heatmap, atol=1e-5)
        written = np.asarray(Image.open(out).convert("RGB"), np.float32)
        assert written.shape == original.shape  # The overlay is drawn on the image at its own size.
        if expected.informative:  # Tinted towards red where the map is hot.
            assert np.abs(written - original).sum(axis=2).max() > 60
        table = imgclf("explain", good[0], "--out", str(out), *where, "--model", TASK1)
        assert table.returncode == 0 and f"explained: {expected.explained.score:7.2%}  {expected.explained.label}" in table.stdout
    refused = imgclf("explain", not_an_image, "--out", str(tmp_path / "x.png"), "--url", server.http, "--model", TASK1)
    assert refused.returncode == 1 and "not an image" in refused.stderr and not (tmp_path / "x.png").exists()


def test_feedback_stores_the_image_under_its_label_over_both_protocols(server, images):
    good, not_an_image, _ = images
    with HttpClient(server.http) as client:
        label = client.model(TASK1).labels[7]
    for where in (["--url", server.http], ["--grpc", server.grpc]):
        run = imgclf("feedback", good[0], "--label", label, *where, "--model", TASK1, "--json")
        assert run.returncode == 0, run.stderr
        answer = json.loads(run.stdout)
        assert answer["label"] == label and (server.feedback_root / answer["stored"]).is_file()
        table = imgclf("feedback", good[0], "--label", label, *where, "--model", TASK1)
        assert table.returncode == 0 and f"{good[0]}: already stored as {label} ({TASK1} v1 had answered" in table.stdout
    refused = imgclf("feedback", good[0], "--label", "nope", "--url", server.http, "--model", TASK1)
    assert refused.returncode == 1 and "label 'nope' is not one of the 200 class ids" in refused.stderr
