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
# The budget's probe times batches for at most this share of the budget (and at least MIN_STEPS
# batches): its model is thrown away, and on a 2-core AVX2 CPU task1's 30 batches took 20 s, a third
# of a one-minute budget. The plan is corrected from the epochs' own times after every epoch.
PROBE_SHARE = 0.05
MIN_STEPS = 5


class _StopAfter(keras.callbacks.Callback):
    """Ends a fit once ``seconds`` have passed and at least ``min_batches`` batches are done."""

    def __init__(self, seconds: float, min_batches: int):
        super().__init__()
        self.seconds, self.min_batches, self.batches, self.started = seconds, min_batches, 0, time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches >= self.min_batches and time.perf_counter() - self.started >= self.seconds:
            self.model.stop_training = True


def measure(model, data, steps: int = STEPS, warmup_steps: int = 3, max_seconds: float | None = None) -> float:
    """Training images/s of ``model`` (compiled; a throwaway copy) on ``data`` (a tf.data dataset
    of batches), the way `fit` trains: one short fit to trace and warm up, then a timed one of
    ``steps`` batches, ended early after ``max_seconds`` (but never before `MIN_STEPS` batches)."""
    model.fit(data.take(warmup_steps), verbose=0)
    batches = data.take(steps)
    sizes = [int(images.shape[0]) for images, _ in batches]
    stop = _StopAfter(max_seconds, MIN_STEPS) if max_seconds is not None else None
    start = time.perf_counter()
    model.fit(batches, verbose=0, callbacks=[stop] if stop else None)
    seconds = time.perf_counter() - start
    images = sum(sizes[: stop.batches] if stop else sizes)
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
    images_per_second = rates[used] if used in rates else measure(probe, train_data, max_seconds=PROBE_SHARE * budget.seconds)
    scratch = run / "checkpoint" / "probe.keras"
    start = time.perf_counter()
    save_model_atomic(probe, scratch)
    checkpoint_seconds = time.perf_counter() - start
    scratch.unlink()
    del probe
    planned = budget.plan(images_per_second, len(dataset.train), len(dataset.validation), config.warmup_epochs, checkpoint_seconds)
    reason = choice.reason if choice else "as configured"
    return dataclasses.replace(planned, precision=used, precision_rates=dict(rates), precision_reason=reason)
