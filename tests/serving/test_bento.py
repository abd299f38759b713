"""`bentoml build` packages the service with its protos and shared preprocessing, and
`bentoml serve <bento>` (from outside the repository) serves HTTP and gRPC."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.conftest import ROOT
from tests.live_server import start_server, stop_server
from tests.serving.helpers import assert_same, b64, pairs, reference, tiny_imagenet_jpegs

pytestmark = pytest.mark.slow


def test_built_bento_carries_its_models_and_serves_http_and_grpc(smoke_runs, real_data_dir, tmp_path):
    # BentoML homes of their own: `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir at
    # start, which would reset the metrics of the session's server sharing the session store.
    build_home, serve_home = tmp_path / "build-home", tmp_path / "serve-home"
    for name in ("digits-cnn", "tinyimagenet-cnn"):
        shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / name, build_home / "models" / name, symlinks=True)
    build_env = {**os.environ, "BENTOML_HOME": str(build_home)}
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"], cwd=ROOT, env=build_env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].split("__tag__:")[-1]
    assert tag.startswith("imgclf:")
    source = build_home / "bentos" / "imgclf" / tag.split(":", 1)[1] / "src"
    for name in (
        "serving/service.py",
        "training/interface/preprocessing.py",
        "training/interface/contract.py",
        "protos/imgclf/v1/classifier_pb2.py",
        "protos/imgclf/v1/classifier.proto",
        "protos/tfserving/tensorflow_serving.proto",
        "protos/descriptors.binpb",
        "protos/inference/grpc_service.proto",
    ):
        assert (source / name).is_file(), name
    # Move the bento to a machine that has nothing else: export it, import it into an empty home.
    archive = tmp_path / "imgclf.bento"
    for command, env in ((["export", tag, str(archive)], build_env), (["import", str(archive)], {**os.environ, "BENTOML_HOME": str(serve_home)})):
        moved = subprocess.run([sys.executable, "-m", "bentoml", *command], env=env, capture_output=True, text=True, timeout=300)
        assert moved.returncode == 0, moved.stderr[-3000:]
    assert sorted(path.name for path in (serve_home / "models").iterdir()) == ["digits-cnn"]  # What bentofile.yaml names.
    jpegs = tiny_imagenet_jpegs(real_data_dir, 2)
    env = {"BENTOML_HOME": str(serve_home)}
    env_without_models = {key: value for key, value in os.environ.items() if key != "IMGCLF_MODELS"}
    server = start_server(tmp_path, env, target=tag, cwd=tmp_path, base_env=env_without_models)
    try:
        assert [model["name"] for model in httpx.get(f"{server.http}/models", timeout=10).json()["models"]] == ["digits-cnn"]
        response = httpx.post(f"{server.http}/classify", json={"images": [b64(d) for d in jpegs]}, timeout=30)
        assert response.status_code == 200, response.text
        assert_same(pairs(response.json()["predictions"]), reference("digits-cnn", jpegs))
        with grpc.insecure_channel(server.grpc) as channel:
            answer = pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(images=jpegs), timeout=30)
        expected = [[label for label, _ in image] for image in reference("digits-cnn", jpegs)]
        assert [[c.label for c in image.classes] for image in answer.results] == expected
    finally:
        stop_server(server)
