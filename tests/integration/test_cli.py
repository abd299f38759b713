"""The training CLI: listing, and one clear message for each kind of bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, jpeg_bytes, pattern
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.slow


def test_list_prints_the_six_tasks_and_the_demo():
    result = run_cli("list")
    assert result.returncode == 0
    for name in ("demo", "task1", "task2", "task3", "task4", "task5", "task6"):
        assert f"\n{name} " in "\n" + result.stdout
    assert "AutoKeras" in result.stdout and "Xception" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "task9"], "unknown task 'task9'"),
        (["train", "task1", "--preset", "fast"], "unknown preset 'fast'"),
        (["train", "task1", "--preset", "smoke", "--strategy", "tpu"], "unknown strategy 'tpu'"),
        (["train", "task1", "--preset", "smoke", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "task1", "--preset", "smoke", "--dataset", "mnist"], "dataset must be one of"),
        (["download", "imagenet"], "unknown dataset 'imagenet'"),
    ],
)
def test_bad_options_get_one_clear_line(args, message, tmp_path):
    result = run_cli(*args, "--run-dir", str(tmp_path / "run")) if args[0] == "train" else run_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_dataset_folder_is_named(tmp_path):
    result = run_cli("train", "task1", "--preset", "smoke", "--data-dir", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert f"data directory does not exist: {tmp_path / 'nowhere'}" in result.stderr


@pytest.mark.parametrize(
    "dataset,make,words",
    [
        (
            "tiny-imagenet",
            lambda root: (root / "tiny-imagenet-200").mkdir() or (root / "tiny-imagenet-200" / "wnids.txt").write_text("n01443537\n"),
            "no training images under",
        ),
        ("cifar10", lambda root: (root / "notes.txt").write_text("no batches here"), "no CIFAR-10 found in"),
        ("folder", lambda root: (root / "cats").mkdir(), "no image files"),
    ],
)
def test_malformed_dataset_is_named_before_tensorflow_is_imported(tmp_path, dataset, make, words):
    root = tmp_path / "data"
    root.mkdir()
    make(root)
    task = "task5" if dataset == "cifar10" else "task1"
    args = ["train", task, "--preset", "smoke", "--data-dir", str(root), "--run-dir", str(tmp_path / "run")]
    args += ["--dataset", "folder"] if dataset == "folder" else []
    code = f"import sys; from training.__main__ import main; code = main({args!r}); print('tensorflow' in sys.modules); sys.exit(code)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr, result.stderr[-2000:]
    assert result.stdout.strip() == "False"  # Refused before TensorFlow was imported.
    assert not (tmp_path / "run").exists()


def test_fine_tuning_without_its_start_names_the_option(tmp_path, real_data_dir):
    result = run_cli("train", "task6", "--preset", "smoke", "--data-dir", str(real_data_dir), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "--init-run" in result.stderr


def _train_task5(weights: str, data_dir, run_dir, env: dict | None = None):
    return run_cli("train", "task5", "--preset", "smoke", "--data-dir", str(data_dir), "--weights", weights, "--run-dir", str(run_dir), env=env)


def test_missing_weights_file_names_both_options(tmp_path, real_data_dir):
    result = _train_task5(str(tmp_path / "xception.h5"), real_data_dir, tmp_path / "run")
    assert result.returncode == 2
    assert "weights file not found" in result.stderr and "--weights imagenet" in result.stderr and "--weights PATH" in result.stderr


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_dir_holding_another_run_is_refused_and_kept(tmp_path, demo_run):
    run = tmp_path / "run"
    shutil.copytree(demo_run, run)  # A finished run of the demo task.
    before = _digest(run)
    second = run_cli("train", "task1", "--preset", "smoke", "--run-dir", str(run))
    assert second.returncode == 2
    assert f"{run} already holds a run of demo" in second.stderr and "--resume" in second.stderr
    assert _digest(run) == before
    mismatch = run_cli("train", "task1", "--preset", "smoke", "--run-dir", str(run), "--resume")
    assert mismatch.returncode == 2 and "holds a run of demo" in mismatch.stderr
    assert _digest(run) == before


def test_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    result = run_cli("train", "demo", "--preset", "smoke", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "is not empty" in result.stderr
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"


def test_own_image_folder_with_a_corrupt_jpeg_trains_and_counts_it(tmp_path):
    rng = np.random.default_rng(0)
    for label, name in enumerate(("circles", "stripes", "dots")):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for index in range(12):
            (tmp_path / "pets" / name / f"{index}.jpg").write_bytes(jpeg_bytes(pattern(rng, label, size=48)))
    good = (tmp_path / "pets" / "dots" / "0.jpg").read_bytes()
    (tmp_path / "pets" / "dots" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    result = run_cli(
        "train",
        "task1",
        "--preset",
        "smoke",
        "--dataset",
        "folder",
        "--data-dir",
        str(tmp_path / "pets"),
        "--run-dir",
        str(tmp_path / "run"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["skipped_images"] == 1
    log = (tmp_path / "run" / "train.log").read_text()
    assert "1 files skipped" in log and "truncated.jpg" in log
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())
    assert labels["class_ids"] == ["circles", "dots", "stripes"]
    # Exported under a name taken from the user's data, not the Tiny ImageNet task's name.
    assert "exported pets-cnn version 1" in result.stdout
    card = json.loads((Path(os.environ["IMGCLF_EXPORT_ROOT"]) / "pets-cnn" / "1" / "model_card.json").read_text())
    assert card["dataset"]["source"] == "folder" and card["labels"]["count"] == 3


def test_imagenet_weights_unreachable_names_both_options(tmp_path, real_data_dir):
    # No network here, and a proxy on a closed loopback port makes sure of it anywhere.
    offline = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = _train_task5("imagenet", real_data_dir, tmp_path / "run", env=offline)
    assert result.returncode == 2
    assert "could not get Xception's ImageNet weights" in result.stderr
    assert "connect to the internet" in result.stderr and "--weights PATH" in result.stderr
