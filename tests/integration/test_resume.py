"""A run killed with SIGKILL mid-training resumes from its last completed epoch, with the settings it started with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.slow

EPOCHS = 16


def test_sigkill_then_resume_loses_at_most_one_epoch(tmp_path):
    run = tmp_path / "run"
    args = ["train", "demo", "--preset", "smoke", "--epochs", str(EPOCHS), "--run-dir", str(run), "--quiet", "--no-export"]
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_file = run / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never completed two epochs")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS, "the run finished before it could be killed"
    assert not (run / "metrics.json").exists()

    # Resumed with other settings, the run is refused by name and left as it was.
    state = state_file.read_bytes()
    other = run_cli("train", "demo", "--preset", "smoke", "--epochs", str(EPOCHS + 1), "--set", "cutmix=0.5", "--run-dir", str(run), "--resume")
    assert other.returncode == 2, other.stderr[-3000:]
    assert f"was started with other settings: cutmix was 0.0, now 0.5; epochs was {EPOCHS}, now {EPOCHS + 1}" in other.stderr
    assert state_file.read_bytes() == state and not (run / "metrics.json").exists()

    resumed = run_cli("train", "demo", "--preset", "smoke", "--epochs", str(EPOCHS), "--run-dir", str(run), "--resume", "--quiet", "--no-export")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run} from epoch {killed_at}" in (run / "train.log").read_text()
    history = (run / "history.csv").read_text().splitlines()
    epochs = [int(line.split(",")[0]) for line in history[1:]]
    assert epochs == list(range(1, EPOCHS + 1))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == EPOCHS


def test_resume_without_a_run_is_refused(tmp_path):
    result = run_cli("train", "demo", "--preset", "smoke", "--run-dir", str(tmp_path / "empty"), "--resume")
    assert result.returncode == 2 and "holds no run to resume" in result.stderr
