"""Two local worker processes train one smoke epoch together with MultiWorkerMirroredStrategy."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_together(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    temporary = tmp_path / "tmp"  # The workers' $TMPDIR, where the non-chief keeps its scratch folder.
    temporary.mkdir()
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(temporary),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "training",
                    "train",
                    "demo",
                    "--preset",
                    "smoke",
                    "--strategy",
                    "multi-worker",
                    "--run-dir",
                    str(tmp_path / "run"),
                    "--quiet",
                    "--no-export",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
    finally:
        for process in processes:
            process.kill()
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-4000:]
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "multi-worker"
    import keras

    model = keras.models.load_model(run / "model.keras")
    probabilities = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Only the chief wrote the run; the other worker's scratch folder, where it said it was, is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp"]
    reported = re.search(r"worker 1: scratch folder (\S+)", outputs[1][1])
    assert reported, outputs[1][1][-2000:]
    scratch = Path(reported.group(1))
    assert scratch.parent == temporary and scratch.name.startswith("worker1-")
    assert not scratch.exists() and not list(temporary.glob("worker*"))
