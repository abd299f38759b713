"""The time budget's throughput probe: a throwaway copy of the model timed on a few training
batches and one checkpoint save, handed to `training.budget.Budget.plan`."""

from __future__ import annotations

import time

import keras

from training import recipe
from training.budget import Budget, Plan
from training.run_dir import RunDirectory, save_model_atomic


def measure(model, data, steps: int = 30, warmup_steps: int = 3) -> float:
    """Training images/s of ``model`` (compiled; a throwaway copy) on ``data`` (a tf.data dataset
    of batches), the way `fit` trains: one short fit to trace and warm up, then a timed one."""
    model.fit(data.take(warmup_steps), verbose=0)
    batches = data.take(steps)
    images = sum(int(images.shape[0]) for images, _ in batches)
    start = time.perf_counter()
    model.fit(batches, verbose=0)
    seconds = time.perf_counter() - start
    if not images:
        raise ValueError("the throughput probe got no training data")
    return images / seconds


def plan(config, model: keras.Model, train_data, dataset, run: RunDirectory, budget: Budget, strategy) -> Plan:
    """Times a throwaway copy of ``model`` on a few batches and one checkpoint save of it, and asks
    ``budget`` for the epochs that fit."""
    with strategy.scope():
        probe = keras.models.clone_model(model)
        recipe.compile_model(probe, config, dataset.num_classes)
    images_per_second = measure(probe, train_data)
    scratch = run / "checkpoint" / "probe.keras"
    start = time.perf_counter()
    save_model_atomic(probe, scratch)
    checkpoint_seconds = time.perf_counter() - start
    scratch.unlink()
    del probe
    return budget.plan(images_per_second, len(dataset.train), len(dataset.validation), config.warmup_epochs, checkpoint_seconds)
