"""The lines that `make demo` prints (curl for imgclf's API, TF Serving's and the Open Inference
Protocol, grpcurl, the CLI, the SDK, the page), which the README's tour shows too, work, run
verbatim against a real server (only host:port and the venv path changed). grpcurl is the real
one (1.8.6, installed into the venv by the `test` extra): it reads the message types from the
server's reflection service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
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
    line = line.replace("localhost:3000", host).replace("localhost:50051", grpc_port).replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "IMGCLF_URL": server.http},
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_demo_examples_answer_like_the_model(server, tmp_path):
    from sklearn.datasets import load_digits

    # The image `make demo` writes to runs/digit.png.
    (tmp_path / "runs").mkdir()
    Image.fromarray((load_digits().images[0] * 15).astype("uint8")).save(tmp_path / "runs" / "digit.png")
    expected = reference("digits-cnn", [(tmp_path / "runs" / "digit.png").read_bytes()])
    best_label, best_score = expected[0][0]

    lines = printed_examples()
    commands = [line for line in lines if not line.startswith("#")]
    assert [line.split()[0].rsplit("/", 1)[-1] for line in commands] == ["curl"] * 4 + ["grpcurl", "imgclf", "imgclf", "imgclf", "python"]
    answers = [run_example(line, server, tmp_path) for line in commands]
    for line, answer in zip(commands, answers):
        assert answer.returncode == 0, f"{line}\n{answer.stderr}"

    classified = json.loads(answers[0].stdout)
    assert classified["model"] == "digits-cnn"
    assert_same(pairs(classified["predictions"]), expected)
    assert "digits-cnn" in [model["name"] for model in json.loads(answers[1].stdout)["models"]]
    tf_serving = json.loads(answers[2].stdout)["predictions"][0]  # TF Serving's REST API, the classify signature.
    assert tf_serving["label"][0] == best_label and tf_serving["score"][0] == pytest.approx(best_score, abs=1e-4)
    v2 = json.loads(answers[3].stdout)["outputs"][0]  # The Open Inference Protocol, its classification extension.
    assert v2["datatype"] == "BYTES" and v2["shape"] == [1, 3] and v2["data"][0].split(":")[2] == best_label
    answers = answers[:2] + answers[4:]
    over_grpc = json.loads(answers[2].stdout)
    assert over_grpc["model_spec"]["name"] == "digits-cnn"  # grpcurl prints the proto field names.
    assert_same([[(c["label"], c["score"]) for c in image["classes"]] for image in over_grpc["results"]], expected)
    assert f"1. {best_score:7.2%}  {best_label:<12}" in answers[3].stdout
    assert [c["label"] for c in json.loads(answers[4].stdout)[0]["classes"]] == [label for label, _ in expected[0]]
    assert answers[5].stdout.splitlines()[1].split()[0] == "digits-cnn"
    assert f"label='{best_label}'" in answers[6].stdout

    (page_line,) = [line for line in lines if line.startswith("#")]
    url = re.search(r"http://\S+", page_line)[0].replace("http://localhost:3000", server.http)
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "<title>imgclf" in page.text


def test_the_readmes_tour_shows_the_lines_that_run():
    """The README's tour is the block `make examples` prints (which the test above runs)."""
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A tour") :]
    (block,) = re.findall(r"```sh\n# (?:call it|every interface).*?\n(.*?)```", tour, flags=re.S)[:1]
    shown = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    printed = [line for line in printed_examples() if not line.startswith("#")]
    assert shown == printed
