"""Integration fixtures: real training runs through the CLI, in subprocesses, on real data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SMOKE_ORDER = ("demo", "task1", "task2", "task3", "task4", "task5", "task6")
# Two lanes run side by side (most of a smoke run is single-threaded Python: imports, data
# loading, conversion); task6 fine-tunes task5's run, so they share a lane.
SMOKE_LANES = (("task5", "task6", "task2"), ("demo", "task1", "task3", "task4"))


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def _start_smoke(task: str, run_dir: Path, data_dir: Path, runs: dict, logs: Path) -> subprocess.Popen:
    extra = ["--init-run", str(runs["task5"])] if task == "task6" else []
    log = open(logs / f"{task}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "training", "train", task, "--preset", "smoke", "--data-dir", str(data_dir),
         "--run-dir", str(run_dir), "--quiet", *extra],
        cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, real_data_dir) -> dict[str, Path]:
    """Every task trained (and exported) with --preset smoke on the real data subsets."""
    root = tmp_path_factory.mktemp("smoke")
    runs: dict[str, Path] = {}
    lanes = [list(lane) for lane in SMOKE_LANES]
    running: dict[int, tuple[str, subprocess.Popen, float]] = {}
    deadline = time.monotonic() + 1500
    try:
        while any(lanes) or running:
            for index, lane in enumerate(lanes):
                if index not in running and lane:
                    task = lane.pop(0)
                    running[index] = (task, _start_smoke(task, root / task, real_data_dir, runs, root), time.monotonic())
            for index, (task, process, _) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[index]
                output = (root / f"{task}.log").read_text()
                assert process.returncode == 0, f"{task} smoke training failed:\n{output[-6000:]}"
                runs[task] = root / task
            assert time.monotonic() < deadline, f"smoke training did not finish: {sorted(t for t, _, _ in running.values())}"
            time.sleep(0.2)
    finally:
        for _, process, _ in running.values():
            process.kill()
    return runs


@pytest.fixture(scope="session")
def demo_export(smoke_runs, tmp_path_factory) -> dict[str, Path]:
    """A private export root and BentoML store holding version 1 of the demo model (copy before changing)."""
    base = tmp_path_factory.mktemp("demo-export")
    result = run_cli("export", str(smoke_runs["demo"]), "--export-root", str(base / "exports"),
                     env={"BENTOML_HOME": str(base / "store")})
    assert result.returncode == 0, result.stderr[-3000:]
    return {"exports": base / "exports", "store": base / "store", "run": smoke_runs["demo"]}
