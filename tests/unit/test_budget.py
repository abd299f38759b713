"""--time-budget's parts: the duration syntax, the plan's arithmetic, the refusals on the command
line, and the stop after a checkpoint (a real Keras fit of a tiny model, with a budget already
nearly spent). The whole thing against real data: tests/integration/test_time_budget.py."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from training import budget
from training.__main__ import main


@pytest.mark.parametrize("text,seconds", [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), (" 45M ", 2700)])
def test_durations(text, seconds):
    assert budget.parse(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "thirty minutes", "0m", "-5m", "1d", "m"])
def test_bad_durations_are_refused_by_name(text):
    with pytest.raises(ValueError, match="--time-budget must be"):
        budget.parse(text)


def test_the_plan_fills_what_is_left_after_evaluation_and_export():
    started = time.monotonic()
    plan = budget.Budget(1800, started).plan(images_per_second=1000, train_images=100_000, validation_images=10_000, warmup_epochs=1)
    epoch = 100 + 10_000 / (budget.VALIDATION_SPEEDUP * 1000) + budget.EPOCH_OVERHEAD_SECONDS
    assert plan.epoch_seconds == pytest.approx(epoch)
    assert plan.reserve_seconds == pytest.approx(10_000 / 3000 + 5 + budget.EXPORT_SECONDS)
    assert plan.epochs == int((1800 - plan.reserve_seconds) * (1 - budget.SAFETY) // epoch)
    assert plan.epochs * epoch + plan.reserve_seconds < 1800 and plan.warmup_epochs == 1 and plan.time_budget_s == 1800
    # No export: more epochs. Too little time: one epoch, and no warm-up (it would leave no decay).
    assert budget.Budget(1800, started, export=False).plan(1000, 100_000, 10_000, 1).epochs >= plan.epochs
    tight = budget.Budget(60, started).plan(1000, 100_000, 10_000, 1)
    assert (tight.epochs, tight.warmup_epochs) == (1, 0)


@pytest.mark.parametrize(
    "arguments,words",
    [
        (["--epochs", "3", "--time-budget", "30m"], "--epochs and --time-budget cannot be used together"),
        (["--time-budget", "soon"], "--time-budget must be a duration"),
        (["--time-budget", "30m", "--strategy", "multi-worker"], "not supported with --strategy multi-worker"),
    ],
)
def test_the_command_refuses_bad_budget_options(arguments, words, capsys, tmp_path):
    assert main(["train", "task1", "--run-dir", str(tmp_path / "run"), *arguments]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # Refused before anything was written.


def test_a_spent_budget_stops_the_fit_after_the_epochs_checkpoint(tmp_path):
    import keras

    from training.run_dir import RunDirectory
    from training.run_recorder import RunProgress, RunRecorder

    run = RunDirectory(tmp_path / "run")
    (run.path / "checkpoint").mkdir(parents=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x, y = np.random.default_rng(0).random((64, 4), np.float32), np.eye(2, dtype=np.float32)[np.arange(64) % 2]
    # 0.5 s left of the budget, 0.4 s kept for evaluation and export: no second epoch fits.
    spent = budget.Budget(100, time.monotonic() - 99.5)
    recorder, stream = RunRecorder(run, [], 0.0, 64), io.StringIO()
    progress = RunProgress(5, 0, spent, reserve_seconds=0.4, stream=stream)
    model.fit(x, y, epochs=5, callbacks=[recorder, progress], verbose=0)
    assert len(recorder.history) == 1 and progress.stopped_early
    assert run.checkpoint_model.is_file() and run.checkpoint_state.is_file()  # Resumable from epoch 2.
    assert "run: epoch 1/5 (20% of the schedule)" in stream.getvalue() and "--resume continues at epoch 2" in stream.getvalue()


def test_the_plan_travels_typed_through_plan_json_and_a_broken_one_is_named(tmp_path):
    plan = budget.Budget(1800, time.monotonic()).plan(1000, 100_000, 10_000, 1)
    plan.save(tmp_path / "plan.json")
    loaded = budget.Plan.load(tmp_path / "plan.json")
    assert isinstance(loaded, budget.Plan) and loaded.to_json() == plan.to_json() and loaded.epochs == plan.epochs
    assert loaded.with_epochs(3).epochs == 3 and budget.Plan.load(tmp_path / "absent.json") is None
    (tmp_path / "broken.json").write_text('{"epochs": 3}')
    with pytest.raises(ValueError, match="plan.json lacks .*images_per_second"):
        budget.Plan.load(tmp_path / "broken.json")


def test_the_search_gets_its_share_of_what_the_reserve_leaves():
    run_budget = budget.Budget(1000, time.monotonic())
    kept = run_budget.reserve()
    assert run_budget.search_seconds(0.3) == pytest.approx((1000 - kept) * 0.3, rel=1e-3)
    assert budget.Budget(10, time.monotonic()).search_seconds(1.0) == budget.MINIMUM_SEARCH_SECONDS


def test_the_search_leaves_the_final_fit_the_time_its_recipe_needs():
    clock = lambda: 0.0  # noqa: E731 (a frozen clock: the arithmetic alone)
    run_budget = budget.Budget(1000, 0.0, clock=clock)
    left = 1000 - run_budget.reserve()
    assert run_budget.search_seconds(0.3, final_fit_seconds=100) == pytest.approx(left * 0.3)  # The share leaves plenty.
    assert run_budget.search_seconds(0.3, final_fit_seconds=900) == pytest.approx(left - 900)  # The final fit's need wins.
    assert run_budget.search_seconds(0.3, final_fit_seconds=5000) == budget.MINIMUM_SEARCH_SECONDS * 0.3  # Never below the floor.
    epoch = budget.Budget.epoch_seconds(1000, 100_000, 5_000)
    assert epoch == pytest.approx(100 + 5 / budget.VALIDATION_SPEEDUP + budget.EPOCH_OVERHEAD_SECONDS)


def test_an_export_that_builds_int8_keeps_more_time_back():
    started = time.monotonic()
    plain, int8 = budget.Budget(600, started), budget.Budget(600, started, int8=True)
    assert int8.reserve() == pytest.approx(plain.reserve() + budget.INT8_SECONDS)
    assert budget.Budget(600, started, export=False, int8=True).reserve() == budget.Budget(600, started, export=False).reserve()
