"""docs/keeping-good.md's five steps run as written against a live server with a feedback folder:
only the address, the tools' folder and the working folder (holding the demo's run and digit, as
`make demo` leaves them) are filled in."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def commands() -> list[str]:
    text = (ROOT / "docs" / "keeping-good.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2  # Starting the server, then the loop.
    assert blocks[0].strip() == "IMGCLF_FEEDBACK_ROOT=feedback .venv/bin/bentoml serve serving.service:Classifier --port 3000"
    return [line for line in blocks[1].splitlines() if line.strip() and not line.startswith("#")]


def test_the_loop_runs_as_written(demo_export, tmp_path):
    from sklearn.datasets import load_digits

    from tests.live_server import start_server, stop_server

    here = tmp_path / "here"
    (here / "runs").mkdir(parents=True)
    (here / "runs" / "demo-recommended-20260101-000000").symlink_to(demo_export["run"])
    Image.fromarray((load_digits().images[0] * 15).astype("uint8")).save(here / "runs" / "digit.png")  # As `make demo` writes it.
    store = tmp_path / "store"
    shutil.copytree(demo_export["store"], store, symlinks=True)
    (tmp_path / "server").mkdir()
    env = {"BENTOML_HOME": str(store), "IMGCLF_MODELS": "digits-cnn", "IMGCLF_FEEDBACK_ROOT": str(here / "feedback"), "IMGCLF_POLL_SECONDS": "0"}
    server = start_server(tmp_path / "server", env)
    tools = str(Path(sys.executable).parent)
    # The CLI finds the server at $IMGCLF_URL (localhost:3000 when unset), curl at the address in its line.
    shell_env = {
        **os.environ,
        "IMGCLF_URL": server.http,
        "BENTOML_HOME": str(store),
        "IMGCLF_EXPORT_ROOT": str(tmp_path / "exports"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    outputs = []
    try:
        for line in commands():
            command = line.replace("localhost:3000", server.http.removeprefix("http://")).replace(".venv/bin/", f"{tools}/")
            ran = subprocess.run(["bash", "-c", command], cwd=here, env=shell_env, capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, f"{line}\n{ran.stdout[-2000:]}{ran.stderr[-2000:]}"
            outputs.append(ran.stdout)
    finally:
        stop_server(server)
    explain, metrics, stats, feedback, _, reload = outputs
    assert "heatmap 8x8 (occlusion, 65 model passes)" in explain and Image.open(here / "heat.png").size == (8, 8)
    assert 'imgclf_prediction_drift_threshold{model="digits-cnn",version="1"}' in metrics
    (entry,) = json.loads(stats)["model_stats"]
    assert (entry["name"], entry["version"]) == ("digits-cnn", "1") and "compute_infer" in entry["inference_stats"]
    assert "stored as 7" in feedback and len(list((here / "feedback" / "7").glob("*.png"))) == 1
    assert json.loads(reload)["models"] == {"digits-cnn": [2]}  # The retrained export, served.
