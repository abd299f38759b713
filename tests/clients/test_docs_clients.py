"""The SDK examples of the Clients page and of the README run as written against the real server
(only the addresses and the image path are filled in)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.serving.helpers import reference, tiny_imagenet_jpegs
from training.data.digits import NAMES

pytestmark = pytest.mark.slow


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


def run_block(block: str, server, image) -> str:
    code = f"IMAGE = {str(image)!r}\n" + block.replace("http://localhost:3000", server.http).replace("localhost:50051", server.grpc)
    run = subprocess.run([sys.executable, "-c", code.replace('"runs/digit.png"', "IMAGE")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{block}\n{run.stderr}"
    return run.stdout


def test_the_clients_pages_sdk_examples_run(server, real_data_dir, tmp_path):
    image = tmp_path / "image.jpg"
    image.write_bytes(tiny_imagenet_jpegs(real_data_dir, 1)[0])
    blocks = python_blocks("docs/clients.md")
    assert len(blocks) == 3
    outputs = [run_block(block, server, image) for block in blocks]
    assert outputs[0].split()[:2] == ["digits-cnn", "1"] and outputs[0].rstrip().endswith("%")
    assert outputs[1].startswith("[") and outputs[1].count("'") == 4
    assert "digits-cnn (32, 32) (1, 10)" in outputs[2]
    assert "refused: gRPC NOT_FOUND: model 'no-such-model' is not served" in outputs[2]


def test_the_readmes_sdk_example_runs(server, tmp_path):
    from sklearn.datasets import load_digits

    image = tmp_path / "digit.png"  # What `make demo` writes to runs/digit.png.
    Image.fromarray((load_digits().images[0] * 15).astype("uint8")).save(image)
    (block,) = python_blocks("README.md")
    label, name, score = run_block(block, server, image).split()
    best_label, best_score = reference("digits-cnn", [image.read_bytes()])[0][0]
    assert (label, name, score) == (best_label, NAMES[int(best_label)], f"{best_score:.1%}")
