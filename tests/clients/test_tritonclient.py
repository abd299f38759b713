"""The real tritonclient (http and grpc, sync and aio), unchanged and in a virtual environment with
nothing of this project, against `bentoml serve`: health, metadata, infer with images (BYTES) and
pixels (FP32 at the model's size and another), binary and JSON, and the classification extension.
Its probabilities must equal /predict's (pixels) and /classify's (images) within 1e-5, and its
top-k /classify's, on real Tiny ImageNet JPEGs."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.serving.helpers import b64, tiny_imagenet_jpegs

pytestmark = pytest.mark.slow

MODEL = "tinyimagenet-cnn"
VENV = ROOT / ".venv-tritonclient"
REQUIREMENTS = ROOT / "tests" / "clients" / "tritonclient-requirements.txt"
FLAVOURS = ("http", "grpc", "http_aio", "grpc_aio")


def tritonclient_python() -> str:
    """The clean venv's python (`make tritonclient-venv`; built here when a bare pytest run lacks it)."""
    if not (VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "-r", str(REQUIREMENTS)], check=True, timeout=600)
        (VENV / ".installed").touch()
    return str(VENV / "bin" / "python")


@pytest.fixture(scope="module")
def outcome(server, real_data_dir, tmp_path_factory):
    jpegs = tiny_imagenet_jpegs(real_data_dir, 3)
    rng = np.random.default_rng(7)
    arrays = {name: rng.integers(0, 256, (2, *size, 3)).astype(np.float32) for name, size in (("at_size", (32, 32)), ("other_size", (20, 27)))}
    inputs = tmp_path_factory.mktemp("tritonclient") / "inputs.npz"
    np.savez(inputs, count=len(jpegs), **{f"image{i}": np.frombuffer(data, np.uint8) for i, data in enumerate(jpegs)}, **arrays)
    python = tritonclient_python()
    isolated = subprocess.run([python, "-c", "import imgclf_client"], capture_output=True)
    assert isolated.returncode != 0, "the tritonclient venv must hold nothing of this project"
    http, grpc_target = server.http.removeprefix("http://"), server.grpc
    ran = subprocess.run(
        [python, str(ROOT / "tests" / "clients" / "tritonclient_calls.py"), http, grpc_target, MODEL, str(inputs)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=inputs.parent,  # Not the repository: nothing of the project is importable.
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    return json.loads(ran.stdout), jpegs, arrays


def classify(server, jpegs: list[bytes], top_k: int) -> list[list[dict]]:
    response = httpx.post(f"{server.http}/classify", json={"images": [b64(d) for d in jpegs], "model": MODEL, "top_k": top_k}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_health_and_metadata(outcome, flavour):
    got = outcome[0][flavour]
    assert got["live"] is True and got["ready"] is True and got["model_ready"] is True
    assert got["server_metadata"]["name"] == "imgclf"
    assert {"classification", "binary_tensor_data", "statistics"} <= set(got["server_metadata"]["extensions"])
    metadata = got["model_metadata"]
    assert metadata["name"] == MODEL and metadata["versions"] == ["1"]
    inputs = {tensor["name"]: (tensor["datatype"], [int(size) for size in tensor["shape"]]) for tensor in metadata["inputs"]}
    assert inputs == {"images": ("BYTES", [-1]), "pixels": ("FP32", [-1, 32, 32, 3])}
    assert [int(size) for size in metadata["outputs"][0]["shape"]] == [-1, 200]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_infer_equals_predict_and_classify(outcome, server, flavour):
    results, jpegs, arrays = outcome
    got = results[flavour]
    full = classify(server, jpegs, 200)
    expected_images = np.zeros((len(jpegs), 200))
    for row, predictions in zip(expected_images, full):
        for entry in predictions:
            row[entry["class_index"]] = entry["score"]
    for name in ("images", "images_json"):
        np.testing.assert_allclose(got[name], expected_images, atol=1e-5, err_msg=name)
        assert got[f"{name}_id"] == f"{name}-1"
    for name, array in (("pixels_at_size", "at_size"), ("pixels_other_size", "other_size"), ("pixels_json", "other_size")):
        predicted = httpx.post(f"{server.http}/predict", json={"pixels": arrays[array].tolist(), "model": MODEL}, timeout=60).json()["probabilities"]
        np.testing.assert_allclose(got[name], predicted, atol=1e-5, err_msg=name)
    for name, k in (("top1", 1), ("top5", 5), ("top5_json", 5)):
        top = classify(server, jpegs, k)
        parsed = [[value.split(":", 2) for value in row] for row in got[name]]
        expected = [[(e["class_index"], e["label"]) for e in image] for image in top]
        assert [[(int(index), label) for _, index, label in row] for row in parsed] == expected
        scores = [[e["score"] for e in image] for image in top]
        np.testing.assert_allclose([[float(score) for score, _, _ in row] for row in parsed], scores, atol=1e-5)


@pytest.mark.parametrize("flavour", ("http", "grpc"))
def test_a_bad_request_raises_the_servers_message(outcome, flavour):
    error = outcome[0][flavour]["unknown_model_error"]
    assert "model 'no-such-model' is not served" in error["message"]
    assert error["status"] in ("404", "StatusCode.NOT_FOUND")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_get_inference_statistics_works_unchanged(outcome, flavour):
    got = outcome[0][flavour]["statistics"]
    (stats,) = got["model_stats"]
    assert (stats["name"], stats["version"]) == (MODEL, "1")
    # Every flavour made its infer calls before asking: the counts include them (protobuf's JSON gives uint64 as strings).
    success = stats["inference_stats"]["success"]
    assert int(success["count"]) >= 8 and int(success["ns"]) > 0
    assert int(stats["inference_count"]) >= int(success["count"]) and int(stats["execution_count"]) >= 1
    assert int(stats["last_inference"]) > 1.6e12
    if "statistics_all" in outcome[0][flavour]:
        assert MODEL in [entry["name"] for entry in outcome[0][flavour]["statistics_all"]["model_stats"]]
