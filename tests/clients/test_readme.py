"""The README's SDK examples run as written against the real server (only the addresses and the
image path are filled in)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.serving.helpers import tiny_imagenet_jpegs

pytestmark = pytest.mark.slow


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Clients") : text.index("## The resize")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_sdk_examples_run(server, real_data_dir, tmp_path):
    image = tmp_path / "image.jpg"
    image.write_bytes(tiny_imagenet_jpegs(real_data_dir, 1)[0])
    blocks = readme_python_blocks()
    assert len(blocks) == 3
    outputs = []
    for block in blocks:
        code = f"IMAGE = {str(image)!r}\n" + block.replace("http://localhost:3000", server.http).replace("localhost:50051", server.grpc)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{block}\n{run.stderr}"
        outputs.append(run.stdout)
    assert outputs[0].split()[:2] == ["digits-cnn", "1"] and outputs[0].rstrip().endswith("%")
    assert outputs[1].startswith("[") and outputs[1].count("'") == 4
    assert "digits-cnn (32, 32) (1, 10)" in outputs[2]
    assert "refused: gRPC NOT_FOUND: model 'no-such-model' is not served" in outputs[2]
