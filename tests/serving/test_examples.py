"""The curl and grpcurl lines that `make demo` prints work, run verbatim against a real server
(only host:port changed). grpcurl cannot be installed here, so `grpcurl` is a shell function that
runs tests/serving/grpcurl_stand_in.py, which works the way grpcurl does: server reflection for the
message types, protobuf's JSON mapping for the body."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.serving.helpers import assert_same, pairs, reference

pytestmark = pytest.mark.slow


def printed_examples() -> list[str]:
    out = subprocess.run(["make", "-s", "--no-print-directory", "examples"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def run_example(line: str, server, cwd) -> subprocess.CompletedProcess:
    host, grpc_port = server.http.removeprefix("http://"), server.grpc
    line = line.replace("localhost:3000", host).replace("localhost:50051", grpc_port)
    stand_in = f'grpcurl() {{ "{sys.executable}" "{ROOT / "tests/serving/grpcurl_stand_in.py"}" "$@"; }}'
    return subprocess.run(["bash", "-c", f"{stand_in}\n{line}"], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_demo_examples_answer_like_the_model(server, tmp_path):
    from sklearn.datasets import load_digits

    # The image `make demo` writes to runs/digit.png.
    (tmp_path / "runs").mkdir()
    Image.fromarray((load_digits().images[0] * 15).astype("uint8")).save(tmp_path / "runs" / "digit.png")
    expected = reference("digits-cnn", [(tmp_path / "runs" / "digit.png").read_bytes()])

    lines = printed_examples()
    assert [line.split()[0] for line in lines] == ["curl", "curl", "grpcurl"]
    answers = [run_example(line, server, tmp_path) for line in lines]
    for line, answer in zip(lines, answers):
        assert answer.returncode == 0, f"{line}\n{answer.stderr}"

    classified = json.loads(answers[0].stdout)
    assert classified["model"] == "digits-cnn"
    assert_same(pairs(classified["predictions"]), expected)
    assert "digits-cnn" in [model["name"] for model in json.loads(answers[1].stdout)["models"]]
    over_grpc = json.loads(answers[2].stdout)
    assert over_grpc["modelSpec"]["name"] == "digits-cnn"
    assert_same([[(c["label"], c["score"]) for c in image["classes"]] for image in over_grpc["results"]], expected)
