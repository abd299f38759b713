"""Integration fixtures: real training runs through the CLI, in subprocesses, on real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SMOKE_ORDER = ("demo", "task1", "task2", "task3", "task4", "task5", "task6")


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, real_data_dir) -> dict[str, Path]:
    """Every task trained with --preset smoke on the real data subsets (task6 from task5's run)."""
    root = tmp_path_factory.mktemp("smoke")
    runs = {}
    for task in SMOKE_ORDER:
        run_dir = root / task
        extra = ["--init-run", str(runs["task5"])] if task == "task6" else []
        result = run_cli("train", task, "--preset", "smoke", "--data-dir", str(real_data_dir),
                         "--run-dir", str(run_dir), "--quiet", *extra)
        assert result.returncode == 0, f"{task} smoke training failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        runs[task] = run_dir
    return runs
