"""The served artefact is lean: a bento installs only serving/requirements.txt (no TensorFlow), and
`bentoml serve <bento>` runs from a fresh venv holding nothing else; bad configuration stops it at
once with the variable named."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from PIL import Image

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.conftest import ROOT
from tests.live_server import start_server, stop_server

pytestmark = pytest.mark.slow

HEAVY = ("tensorflow", "keras", "autokeras", "tf2onnx", "tensorflow-serving-api", "matplotlib", "scikit-learn", "grpcio-tools")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


@pytest.fixture(scope="module")
def bento(demo_export, tmp_path_factory) -> dict:
    """The project built as a bento carrying the demo model, moved into an empty BentoML home."""
    tmp = tmp_path_factory.mktemp("lean")
    build_home, serve_home = tmp / "build-home", tmp / "serve-home"
    shutil.copytree(demo_export["store"] / "models", build_home / "models", symlinks=True)
    build_env = {**os.environ, "BENTOML_HOME": str(build_home)}
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--output", "tag"], cwd=ROOT, env=build_env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].split("__tag__:")[-1]
    archive = tmp / "imgclf.bento"
    for command, env in ((["export", tag, str(archive)], build_env), (["import", str(archive)], {**os.environ, "BENTOML_HOME": str(serve_home)})):
        moved = subprocess.run([sys.executable, "-m", "bentoml", *command], env=env, capture_output=True, text=True, timeout=300)
        assert moved.returncode == 0, moved.stderr[-3000:]
    folder = serve_home / "bentos" / "imgclf" / tag.split(":", 1)[1]
    return {"tag": tag, "home": serve_home, "folder": folder, "archive": archive, "tmp": tmp}


def test_the_bento_and_its_dockerfile_install_only_the_serving_requirements(bento):
    requirements = bento["folder"] / "env" / "python" / "requirements.txt"
    pins = _pins(requirements)
    serving = _pins(ROOT / "serving" / "requirements.txt")
    assert set(pins) == set(serving) and all(pins[name] == version for name, version in serving.items())
    assert not set(pins) & set(HEAVY), sorted(set(pins) & set(HEAVY))
    dockerfile = (bento["folder"] / "env" / "docker" / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if re.search(r"\b(pip|uv) .*install\b", line)]
    # uv itself (hash-pinned), then the one install of the bento's packages: its requirements file.
    assert [line for line in installs if "requirements.txt" in line and "uv-requirements" not in line] == [
        line for line in installs if "uv-requirements" not in line
    ]
    assert any("env/python/requirements.txt" in line for line in installs)
    assert not (bento["folder"] / "src" / "training" / "train.py").exists()
    assert [p.name for p in (bento["folder"] / "src" / "training").iterdir()] == ["interface"]  # The package whole, and nothing else.
    assert sorted(p.name for p in (bento["folder"] / "src" / "training" / "interface").iterdir()) == [
        "__init__.py",
        "contract.py",
        "monitoring.py",
        "preprocessing.py",
    ]


@pytest.fixture(scope="module")
def lean_venv(bento) -> Path:
    """A fresh venv holding the bento's own requirements and nothing else."""
    venv = bento["tmp"] / "serve-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(bento["folder"] / "env" / "python" / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def _digit_png() -> bytes:
    from sklearn.datasets import load_digits

    buffer = io.BytesIO()
    Image.fromarray((load_digits().images[0] * 15).astype("uint8")).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_fresh_venv_with_only_the_bento_requirements_serves_both_protocols(bento, lean_venv):
    python = str(lean_venv / "bin" / "python")
    missing = subprocess.run([python, "-c", "import tensorflow"], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "No module named 'tensorflow'" in missing.stderr
    base_env = {key: value for key, value in os.environ.items() if key not in ("IMGCLF_MODELS", "PYTHONPATH", "VIRTUAL_ENV")}
    base_env["PATH"] = f"{lean_venv / 'bin'}:/usr/bin:/bin"
    server = start_server(bento["tmp"], {"BENTOML_HOME": str(bento["home"])}, target=bento["tag"], cwd=bento["tmp"], base_env=base_env, python=python)
    try:
        image = _digit_png()
        answer = httpx.post(f"{server.http}/classify", content=image, headers={"Content-Type": "image/png"}, timeout=30)
        assert answer.status_code == 200, answer.text
        top = answer.json()["predictions"][0]
        assert answer.json()["model"] == "digits-cnn" and len(top) == 5 and top[0]["label"] in "0123456789"
        with grpc.insecure_channel(server.grpc) as channel:
            response = pb_grpc.ClassifierServiceStub(channel).Classify(pb.ClassifyRequest(images=[image]), timeout=30)
        assert [(c.label, round(c.score, 5)) for c in response.results[0].classes] == [(c["label"], round(c["score"], 5)) for c in top]
        log = server.log.read_text(errors="replace")
        assert re.search(r"worker ready in \d+\.\d+ s: imports", log), log[-2000:]
    finally:
        stop_server(server)


@pytest.mark.parametrize(
    "env,words",
    [
        ({"IMGCLF_TENSORFLOW_MODELS": "digits-cnn"}, "IMGCLF_TENSORFLOW_MODELS names digits-cnn, but TensorFlow is not installed"),
        ({"IMGCLF_MODELS": "no-such-model"}, "IMGCLF_MODELS: model 'no-such-model' is not in the BentoML store"),
        ({"IMGCLF_TLS_CERT_FILE": "/etc/hostname", "IMGCLF_TLS_KEY_FILE": "/etc/hostname"}, "IMGCLF_TLS_CERT_FILE '/etc/hostname' holds no PEM"),
        (
            {"IMGCLF_TLS_CERT_FILE": "/nonexistent.pem", "IMGCLF_TLS_KEY_FILE": "/nonexistent.key"},
            "IMGCLF_TLS_CERT_FILE '/nonexistent.pem' is not a file",
        ),
    ],
    ids=["tensorflow-runtime-without-tensorflow", "model-not-in-store", "tls-file-not-pem", "tls-file-missing"],
)
def test_bad_configuration_stops_the_start_at_once_naming_the_variable(bento, lean_venv, env, words):
    environment = {key: value for key, value in os.environ.items() if key not in ("IMGCLF_MODELS", "PYTHONPATH", "VIRTUAL_ENV")}
    environment.update({"BENTOML_HOME": str(bento["home"]), "PATH": f"{lean_venv / 'bin'}:/usr/bin:/bin", **env})
    result = subprocess.run(
        [str(lean_venv / "bin" / "python"), "-m", "bentoml", "serve", bento["tag"], "--port", "0"],
        cwd=bento["tmp"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and f"imgclf: cannot start: {words}" in result.stderr, (result.stdout + result.stderr)[-3000:]
