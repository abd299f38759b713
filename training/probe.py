"""The throughput probe: the task's model timed on a few real training batches, for `--precision
auto`'s choice (`training.precision`) and for the time budget's plan (`training.budget.Budget.plan`,
with one checkpoint save timed too)."""

from __future__ import annotations

import dataclasses
import time

import keras

from training import precision, recipe
from training.budget import Budget, Plan
from training.run_dir import RunDirectory, save_model_atomic

# Batches timed per measurement; auto's choice times each precision twice.
STEPS = 30
PRECISION_STEPS = 15


def measure(model, data, steps: int = STEPS, warmup_steps: int = 3) -> float:
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


def choose_precision(config, build, num_classes: int, train_data, strategy, support=None) -> precision.Choice:
    """The run's precision (`training.precision.resolve`): for ``auto``, a throwaway model from
    ``build()`` in each precision, compiled with the task's recipe, timed alternately."""
    models = {}

    def time_in(name: str) -> float:
        if name not in models:
            with precision.policy(name), strategy.scope():
                models[name] = build()
                recipe.compile_model(models[name], config, num_classes)
            models[name].fit(train_data.take(3), verbose=0)  # Traced once, not at every round.
        return measure(models[name], train_data, steps=PRECISION_STEPS, warmup_steps=1)

    try:
        return precision.resolve(config.precision, time_in, support)
    finally:
        models.clear()


def plan(
    config, model: keras.Model, train_data, dataset, run: RunDirectory, budget: Budget, strategy, choice: precision.Choice | None = None
) -> Plan:
    """Times a throwaway copy of ``model`` on a few batches (unless ``choice`` already timed its
    precision) and one checkpoint save of it, and asks ``budget`` for the epochs that fit."""
    with strategy.scope():
        probe = keras.models.clone_model(model)
        recipe.compile_model(probe, config, dataset.num_classes)
    rates = choice.rates if choice else {}
    used = choice.precision if choice else precision.of_model(model)
    images_per_second = rates[used] if used in rates else measure(probe, train_data)
    scratch = run / "checkpoint" / "probe.keras"
    start = time.perf_counter()
    save_model_atomic(probe, scratch)
    checkpoint_seconds = time.perf_counter() - start
    scratch.unlink()
    del probe
    planned = budget.plan(images_per_second, len(dataset.train), len(dataset.validation), config.warmup_epochs, checkpoint_seconds)
    reason = choice.reason if choice else "as configured"
    return dataclasses.replace(planned, precision=used, precision_rates=dict(rates), precision_reason=reason)
