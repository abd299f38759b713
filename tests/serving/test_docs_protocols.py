"""The Serving page's "Protocols" section runs as written against a live server, one example per protocol:
curl and the real grpcurl (through reflection) for imgclf's API, TensorFlow Serving's and the
Open Inference Protocol v2, the tritonclient block in its clean venv, and the SDK block. Only the
addresses and the grpcurl path are filled in; each answer must name the reference's top classes."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients.test_tritonclient import tritonclient_python
from tests.conftest import ROOT
from tests.serving.helpers import reference, tiny_imagenet_jpegs

pytestmark = pytest.mark.slow

MODEL = "tinyimagenet-cnn"


def section() -> str:
    text = (ROOT / "docs" / "serving.md").read_text()
    start = text.index("## Protocols")
    return text[start : text.index("\n## ", start + 1)]


def shell_lines() -> list[str]:
    (block,) = re.findall(r"```sh\n(.*?)```", section(), flags=re.S)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def here(real_data_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme-protocols")
    (folder / "cat.jpg").write_bytes(tiny_imagenet_jpegs(real_data_dir, 1)[0])
    return folder


def filled(text: str, server) -> str:
    return text.replace("localhost:3000", server.http.removeprefix("http://")).replace("localhost:50051", server.grpc)


def run(command: list[str], cwd: Path) -> str:
    ran = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}"
    return ran.stdout


def snake(value):
    """grpcurl prints some messages' fields in their JSON names (``stringVal``): back to ``string_val``."""
    if isinstance(value, dict):
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m[1].lower(), key): snake(item) for key, item in value.items()}
    return [snake(item) for item in value] if isinstance(value, list) else value


def labels_of(line: str, out: str) -> list[str]:
    """The top labels an example printed, in order, read the way its protocol prints them."""
    out = json.dumps(snake(json.loads(out)))
    if "/classify" in line:
        return [entry["label"] for entry in json.loads(out)["predictions"][0]]
    if "ClassifierService" in line:
        return [entry["label"] for entry in json.loads(out)["results"][0]["classes"]]
    if ":predict" in line:
        return json.loads(out)["predictions"][0]["label"]
    if "PredictionService" in line:
        return [base64.b64decode(value).decode() for value in json.loads(out)["outputs"]["label"]["string_val"]]
    if "/infer" in line:
        return [value.split(":", 2)[2] for value in json.loads(out)["outputs"][0]["data"]]
    if "GRPCInferenceService" in line:
        contents = json.loads(out)["outputs"][0]["contents"]["bytes_contents"]
        return [base64.b64decode(value).decode().split(":", 2)[2] for value in contents]
    raise AssertionError(f"no reader for {line}")


def test_every_shell_example_answers_with_the_reference_classes(server, here):
    expected = [label for label, _ in reference(MODEL, [(here / "cat.jpg").read_bytes()], top_k=5)[0]]
    lines = shell_lines()
    assert len(lines) == 6  # Two per protocol.
    grpcurl = str(Path(sys.executable).parent / "grpcurl")
    for line in lines:
        command = filled(line, server).replace("grpcurl ", f"{grpcurl} ", 1)
        labels = labels_of(line, run(["bash", "-c", command], here))
        assert labels == expected[: len(labels)] and len(labels) >= 3, (line, labels, expected)


def test_the_tritonclient_and_sdk_blocks_run(server, here):
    expected = [label for label, _ in reference(MODEL, [(here / "cat.jpg").read_bytes()], top_k=3)[0]]
    triton_block, sdk_block = re.findall(r"```python\n(.*?)```", section(), flags=re.S)
    printed = run([tritonclient_python(), "-c", filled(triton_block, server)], here)
    assert re.findall(r"b'[0-9.]+:\d+:([^']+)'", printed) == expected, printed
    printed = run([sys.executable, "-c", filled(sdk_block, server)], here)
    assert [line.split()[0] for line in printed.splitlines()] == expected, printed


def test_the_explanation_examples_explain_the_top_class(server, here):
    text = (ROOT / "docs" / "serving.md").read_text()
    start = text.index("## Explanations")
    (block,) = re.findall(r"```sh\n(.*?)```", text[start : text.index("\n## ", start + 1)], flags=re.S)
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 2
    top = reference(MODEL, [(here / "cat.jpg").read_bytes()], top_k=1)[0][0][0]
    grpcurl = str(Path(sys.executable).parent / "grpcurl")
    curl = json.loads(run(["bash", "-c", filled(lines[0], server)], here))
    assert curl["label"] == top and curl["method"]["forward_passes"] == 65
    assert sum(map(sum, curl["heatmap"])) == pytest.approx(1, abs=1e-5)
    rpc = snake(json.loads(run(["bash", "-c", filled(lines[1], server).replace("grpcurl ", f"{grpcurl} ", 1)], here)))
    assert rpc["explained"]["label"] == top and rpc["heatmap_rows"] == 8 and len(rpc["heatmap"]) == 64
