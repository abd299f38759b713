"""The learning-rate schedule (warm-up, cosine to zero) and its re-planning under a time budget:
the curve against Keras' own CosineDecay, and real Keras fits under a budget whose clock a callback
advances by a set time per batch (so that the epochs' cadence, and so the plan, is exact)."""

from __future__ import annotations

import io

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training import budget  # noqa: E402
from training.run_recorder import RunProgress  # noqa: E402
from training.schedule import LearningRateSchedule, learning_rate_at  # noqa: E402


@pytest.mark.parametrize("warmup", [0, 10])
def test_the_curve_is_keras_cosine_decay_with_warm_up(warmup):
    keras_schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.02 * (0.1 if warmup else 1.0),
        decay_steps=100 - warmup,
        warmup_target=0.02 if warmup else None,
        warmup_steps=warmup,
    )
    for step in (0, 1, 5, 9, 10, 11, 50, 99, 100, 130):
        assert learning_rate_at(step, 0.02, 100, warmup) == pytest.approx(float(keras_schedule(step)), rel=1e-5, abs=1e-9), step


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _TimedAndWatched(keras.callbacks.Callback):
    """Advances the clock by a set time per batch and records the rate each batch ran with."""

    def __init__(self, clock: _Clock, seconds_per_batch):
        super().__init__()
        self.clock, self.seconds, self.rates = clock, seconds_per_batch, []
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))
        self.clock.now += self.seconds(self.epoch) if callable(self.seconds) else self.seconds


def _fit_under_budget(planned_epochs: int, budget_seconds: float, reserve: float = 0.3, seconds_per_batch=0.05):
    """What `training.train.fit` does with a budget: a schedule, a progress that re-plans it, and
    fits continued until the (re-planned) schedule ends. 4 batches of 50 ms: about 0.2 s an epoch."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
    x, y = np.random.default_rng(0).random((64, 4), np.float32), np.eye(2, dtype=np.float32)[np.arange(64) % 2]
    rates = LearningRateSchedule(0.1, steps_per_epoch=4, epochs=planned_epochs, warmup_epochs=1)
    clock = _Clock()
    watch, stream = _TimedAndWatched(clock, seconds_per_batch), io.StringIO()
    replans = []

    def replan(epochs):
        replans.append(epochs)
        rates.epochs = epochs

    run_budget = budget.Budget(budget_seconds, clock(), clock=clock)
    progress = RunProgress(planned_epochs, 0, run_budget, reserve_seconds=reserve, stream=stream, replan=replan)
    done = 0
    while done < progress.epochs and not progress.stopped_early:
        history = model.fit(x, y, batch_size=16, epochs=progress.epochs, initial_epoch=done, callbacks=[rates, watch, progress], verbose=0)
        done += len(history.epoch)
    return done, progress, rates, watch.rates, run_budget, replans, stream.getvalue()


def test_a_probe_that_underestimated_the_speed_is_corrected_and_the_schedule_still_ends():
    # Planned 3 epochs, but 3 s fit more of 0.2 s: after the first, (2.8 s - 0.3 s kept) x 0.9 / 0.2 s
    # = 11 more. The schedule grows, and still decays to its end.
    done, progress, rates, seen, run_budget, replans, output = _fit_under_budget(3, 3.0)
    assert replans[0] == 12 and done == progress.epochs == rates.epochs >= 12
    assert not progress.stopped_early and run_budget.elapsed() < 3.0
    assert seen[0] == pytest.approx(0.01) and max(seen) == pytest.approx(0.1, rel=0.05)
    # The last batch ran at the last step of the (re-planned) cosine: the decay completed.
    assert seen[-1] == pytest.approx(learning_rate_at(4 * done - 1, 0.1, 4 * done, 4)) and seen[-1] < 0.1 * 0.05
    assert f"re-planned from 3 to {replans[0]} epochs" in output and "schedule complete" in output


def test_a_probe_that_overestimated_the_speed_is_corrected_and_the_schedule_still_ends():
    # Planned 20 epochs, but after the first, (1.3 s - 0.3 s) x 0.9 / 0.2 s = 4 more fit: the schedule
    # shrinks, and the run ends decayed inside the budget.
    done, progress, rates, seen, run_budget, replans, output = _fit_under_budget(20, 1.5)
    assert replans[0] == 5 and done == progress.epochs == rates.epochs <= 5
    assert not progress.stopped_early and run_budget.elapsed() < 1.5
    assert seen[-1] == pytest.approx(learning_rate_at(4 * done - 1, 0.1, 4 * done, 4)) and len(seen) == 4 * done
    assert "schedule complete" in output


def test_epochs_whose_time_swings_still_end_the_schedule_inside_the_budget():
    # Epochs alternating 0.2 s and 0.4 s (a shared machine did 87 s and 145 s): a plan on the mean
    # of the last epochs grew after each fast epoch and then stopped short of its end; the plan
    # keeps the worst swing free, and the run completes its schedule.
    done, progress, rates, seen, run_budget, replans, output = _fit_under_budget(3, 3.0, seconds_per_batch=lambda epoch: 0.05 * (1 + epoch % 2))
    assert replans and not progress.stopped_early and done == progress.epochs == rates.epochs
    assert run_budget.elapsed() <= 3.0 - 0.3
    assert seen[-1] == pytest.approx(learning_rate_at(4 * done - 1, 0.1, 4 * done, 4))


def test_the_schedule_does_not_grow_in_its_second_half():
    # Slow epochs (0.4 s) first, then fast ones (0.1 s): the plan grows while in its first half
    # only; later the rate, already decayed, is not raised again.
    done, progress, rates, seen, run_budget, replans, output = _fit_under_budget(8, 4.0, seconds_per_batch=lambda epoch: 0.1 if epoch < 4 else 0.025)
    assert not progress.stopped_early and done == progress.epochs == rates.epochs
    decay = seen[4:]  # After the warm-up epoch, the rate never rises.
    assert all(later <= earlier + 1e-9 for earlier, later in zip(decay, decay[1:]))
