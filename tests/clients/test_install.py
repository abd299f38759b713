"""The client package installs on its own, without TensorFlow, BentoML or ONNX Runtime, and
classifies an image against the running server from there."""

from __future__ import annotations

import json
import subprocess
import venv

import pytest

from tests.conftest import ROOT
from tests.serving.helpers import tiny_imagenet_jpegs

pytestmark = pytest.mark.slow


def test_the_client_installs_alone_and_classifies(server, real_data_dir, tmp_path):
    environment = tmp_path / "client-venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT / "clients" / "python")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    image = tmp_path / "image.jpg"
    image.write_bytes(tiny_imagenet_jpegs(real_data_dir, 1)[0])
    script = f"""
import importlib.util, json
from imgclf_client import HttpClient, GrpcClient
heavy = {{name: importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras", "bentoml", "onnxruntime")}}
with HttpClient({server.http!r}) as http, GrpcClient({server.grpc!r}) as over_grpc:
    a = http.classify({str(image)!r}, model="tinyimagenet-cnn")
    b = over_grpc.classify({str(image)!r}, model="tinyimagenet-cnn")
print(json.dumps({{"heavy": heavy, "http": [c.label for c in a[0]], "grpc": [c.label for c in b[0]]}}))
"""
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout)
    assert answer["heavy"] == {"tensorflow": False, "keras": False, "bentoml": False, "onnxruntime": False}
    assert len(answer["http"]) == 5 and answer["http"] == answer["grpc"]
    for module in ("tensorflow", "bentoml", "onnxruntime"):
        imported = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
        assert imported.returncode != 0 and "No module named" in imported.stderr
    cli = subprocess.run(
        [str(environment / "bin" / "imgclf"), "classify", str(image), "--url", server.http, "--json"], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 0 and json.loads(cli.stdout)[0]["model"] == "digits-cnn", cli.stderr
