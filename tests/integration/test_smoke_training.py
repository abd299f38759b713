"""Every task trains end to end with --preset smoke, and its saved model predicts probabilities."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import SMOKE_ORDER
from training import tasks
from training.data import Limits, load_dataset

pytestmark = pytest.mark.slow

RUN_FILES = ("config.json", "labels.json", "train.log", "history.csv", "curves.png", "confusion.json", "metrics.json", "model.keras")


@pytest.mark.parametrize("task", SMOKE_ORDER)
def test_smoke_run_writes_every_output(task, smoke_runs):
    run = smoke_runs[task]
    for name in RUN_FILES:
        assert (run / name).is_file(), f"{task}: {name} missing"
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((run / "logs").rglob("*tfevents*")), "no TensorBoard logs"  # task2's from its final fit.
    assert (run / "checkpoint" / "model.keras").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("val_top1", "val_top5", "per_class_accuracy", "train_seconds", "images_per_second", "parameters"):
        assert key in metrics, key
    assert 0.0 <= metrics["val_top1"] <= metrics["val_top5"] <= 1.0
    labels = json.loads((run / "labels.json").read_text())
    assert len(metrics["per_class_accuracy"]) == len(labels["class_ids"])
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["name"] == task and config["preset"] == "smoke"


@pytest.mark.parametrize("task", SMOKE_ORDER)
def test_smoke_model_predicts_probabilities_from_raw_pixels(task, smoke_runs, real_data_dir):
    import keras

    config = tasks.resolve(task, "smoke")
    data = load_dataset(config.dataset, real_data_dir, config.input_size, Limits(20, 20))
    model = keras.models.load_model(smoke_runs[task] / "model.keras")
    assert model.input.shape[1:] == (*config.input_size, 3)
    probabilities = model.predict(data.validation.images.astype(np.float32), verbose=0)
    assert probabilities.shape == (len(data.validation), data.num_classes)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_autokeras_search_keeps_its_log_and_trials(smoke_runs):
    run = smoke_runs["task2"]
    trials = json.loads((run / "trials.json").read_text())
    assert len(trials) >= 1 and all(t["score"] is not None for t in trials if t["status"] == "COMPLETED")
    assert (run / "search" / "oracle.json").is_file()
    assert "Trial 1 Complete" in (run / "search.log").read_text()


def test_autokeras_best_model_is_plain_keras(smoke_runs):
    code = "import sys, keras; keras.models.load_model(sys.argv[1]); print('autokeras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code, str(smoke_runs["task2"] / "model.keras")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_bottleneck_tasks_cache_features(smoke_runs):
    for task in ("task4", "task5"):
        assert (smoke_runs[task] / "features" / "train.npy").is_file()
        assert "cached train features" in (smoke_runs[task] / "train.log").read_text()


def test_task6_fine_tunes_the_task5_model(smoke_runs):
    task5 = json.loads((smoke_runs["task5"] / "metrics.json").read_text())
    task6 = json.loads((smoke_runs["task6"] / "metrics.json").read_text())
    assert task6["parameters"] == task5["parameters"]
    assert task6["trainable_parameters"] > task5["trainable_parameters"]
    assert "Xception layers unfrozen from block" in (smoke_runs["task6"] / "train.log").read_text()
