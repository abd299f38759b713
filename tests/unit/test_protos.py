"""The committed generated modules match the .proto files, and the serving path stays TensorFlow-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # Each test starts a Python process.


def test_generated_modules_are_fresh():
    result = subprocess.run([sys.executable, "-m", "protos.generate", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_serving_path_does_not_import_tensorflow():
    code = (
        "import sys, serving.service, serving.grpc.server, serving.http.openapi, serving.grpc.proto_pool as p; p.pool(); "
        "p.message('tensorflow.serving.PredictRequest'); p.message('inference.ModelInferRequest'); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
