"""AutoKeras on Keras 3.12: a real search stops at its wall-clock budget and keeps every trial's score."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import tasks
from training.data import Limits, load_dataset
from training.run_context import RunOptions
from training.run_dir import RunDirectory

pytestmark = pytest.mark.slow


def test_wall_clock_budget_ends_the_search(tmp_path):
    from training.models import autokeras_search

    # Trials of equal epochs (equal-time trials would each end at 4 s / 5 and start the next).
    config = tasks.resolve("task2", "smoke", dataset="digits", max_trials=5, trial_epochs=50, equal_time_trials=False)
    dataset = load_dataset("digits", None, config.input_size, Limits(300, 100))
    result = autokeras_search.search(config, dataset, RunDirectory(tmp_path), RunOptions(verbose=0), seconds=4)
    assert result.extra["budget_exhausted"] is True
    assert result.extra["trials"] == 1  # the budget ran out inside the first trial: no new trial started
    assert len(result.history) < 50  # and that trial was stopped early
    trials = json.loads((tmp_path / "trials.json").read_text())
    assert trials[0]["score"] is not None
    probabilities = result.model.predict(dataset.validation.images[:8].astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_trials_of_equal_time_are_stopped_by_their_clock_not_their_epochs(tmp_path):
    from training.models import autokeras_search

    # 24 s for 8 trials of 3 s: each trial's build and validation come out of the search's budget
    # too, and no trial starts that the rest cannot hold, judged by the last trial's whole cost. On a
    # 2-core AVX2 CPU a trial of 3 s training cost about 7 s in all (the first one more): two or three
    # trials start, and only a trial that outruns its predecessor's cost can be cut by the budget.
    config = tasks.resolve("task2", "smoke", dataset="digits", max_trials=8, trial_epochs=500, equal_time_trials=True)
    dataset = load_dataset("digits", None, config.input_size, Limits(300, 100))
    result = autokeras_search.search(config, dataset, RunDirectory(tmp_path), RunOptions(verbose=0), seconds=24)
    assert result.extra["trial_seconds"] == 3.0
    # Every trial ran until its 3 s were up, except perhaps the last, which the search's budget may end.
    assert result.extra["trials"] >= 2 and result.extra["trials_stopped_by_time"] >= result.extra["trials"] - 1 >= 1
    assert len(result.history) < 500 * result.extra["trials"]
    trials = json.loads((tmp_path / "trials.json").read_text())
    assert sum(trial["score"] is not None for trial in trials) >= 2


def test_a_trials_learning_rate_anneals_to_zero_over_its_seconds():
    """Each trial is scored at the end of a cosine from its starting rate to zero over its time."""
    import time

    import keras

    from training.models.autokeras_search import TrialClock

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    rates = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
            time.sleep(0.02)

    clock = TrialClock(1.0)
    rng = np.random.default_rng(0)
    images, labels = rng.random((64, 4), dtype=np.float32), np.eye(2, dtype=np.float32)[rng.integers(0, 2, 64)]
    model.fit(images, labels, batch_size=8, epochs=1000, callbacks=[clock, Record()], verbose=0)
    assert clock.stopped == 1 and len(rates) < 8000  # The clock, not the epochs, ended it.
    assert rates[0] == pytest.approx(1e-3, rel=0.01) and rates[-1] < 2e-5
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert clock.rate(0.5) == pytest.approx(5e-4)


@pytest.mark.parametrize(("seconds", "another_trial"), [(20.0, True), (10.0, False)])
def test_no_trial_starts_that_what_is_left_cannot_hold(seconds, another_trial):
    """A trial that cost 6 s (from the search's start to the end of its training) ends 6 s in: with
    20 s the next may start, with 10 s it may not, and the search reports its budget spent."""
    from types import SimpleNamespace

    import keras

    from training.models.autokeras_search import SearchBudget

    oracle = SimpleNamespace(trials={"first": object()}, max_trials=6)
    budget = SearchBudget(SimpleNamespace(oracle=oracle), seconds)
    budget.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    budget.started = budget.last_end = budget.started - 6.0  # The first trial's 6 s, without sleeping them.
    budget.on_train_end()
    assert budget.trial_cost == pytest.approx(6.0, abs=0.5)
    assert oracle.max_trials == (6 if another_trial else 1) and budget.exhausted is not another_trial
