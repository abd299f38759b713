"""What a fit records as it goes: `RunRecorder` (checkpoint and history at every epoch end),
`RunProgress` (the run's overall position and ETA, and the time budget's stop) and the
`FitResult` a fit or a search hands back to `training.train`. The budget's arithmetic is
`training.budget`'s."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable

import keras

from training import reporting
from training.budget import Budget, describe
from training.run_dir import RunDirectory, save_model_atomic, write_json

log = logging.getLogger("training")


@dataclasses.dataclass
class FitResult:
    model: keras.Model
    history: list[dict]
    train_seconds: float
    train_images: int
    extra: dict = dataclasses.field(default_factory=dict)


class RunRecorder(keras.callbacks.Callback):
    """At each epoch end: saves the training model and state atomically, rewrites history.csv.

    A run killed at any moment resumes from the last completed epoch, losing at most one.
    """

    def __init__(self, run: RunDirectory, history: list[dict], train_seconds: float, images_per_epoch: int, checkpoint: bool = True):
        super().__init__()
        self.run, self.history, self.checkpoint = run, history, checkpoint
        self.train_seconds, self.images_per_epoch = train_seconds, images_per_epoch
        self._epoch_start = self._test_start = None
        self._recorded: set[tuple[int, int]] = set()

    def __deepcopy__(self, memo):
        return self  # KerasTuner copies callbacks per trial; one recorder must see them all.

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._test_start = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._epoch_start is not None and self._test_start is None:
            self._test_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # AutoKeras may hand one callback to a fit twice: record each epoch of each model once.
        key = (id(self.model), epoch)
        if key in self._recorded:
            return
        self._recorded.add(key)
        seconds = (self._test_start or time.perf_counter()) - self._epoch_start
        self.train_seconds += seconds
        row = {"epoch": len(self.history) + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["train_seconds"] = round(seconds, 3)
        row["images_per_second"] = round(self.images_per_epoch / seconds, 1) if seconds else None
        self.history.append(row)
        if not self.checkpoint:  # AutoKeras checkpoints its trials itself.
            reporting.write_history_csv(self.run / "history.csv", self.history)
            return
        save_model_atomic(self.model, self.run.checkpoint_model)
        write_json(self.run.checkpoint_state, {"epoch": epoch + 1, "train_seconds": self.train_seconds, "history": self.history})
        reporting.write_history_csv(self.run / "history.csv", self.history)


class RunProgress(keras.callbacks.Callback):
    """After each epoch (and after `RunRecorder` has saved it): one line with the run's position in
    its whole schedule and the time left, printed and logged.

    With a `Budget`, it stops the run when the next epoch would not fit before what the budget keeps
    for evaluation and export. With ``replan`` too, it first asks the budget for the schedule's new
    length (`Budget.replanned`, from the epochs' measured durations) and hands a changed count to
    ``replan`` (which moves the learning-rate schedule's end and rewrites the plan). A throughput
    probe that caught the machine in a slow or a fast moment is so corrected after the first epoch."""

    RECENT = 3  # The ETA prices an epoch at the mean of this many last epochs.

    def __init__(
        self,
        epochs: int,
        initial_epoch: int,
        budget: Budget | None = None,
        reserve_seconds: float = 0.0,
        stream=None,
        replan: Callable[[int], None] | None = None,
    ):
        super().__init__()
        self.epochs, self.initial, self.budget, self.reserve_seconds = epochs, initial_epoch, budget, reserve_seconds
        self.stream, self.replan = stream or sys.stderr, replan
        self.clock = budget.clock if budget is not None else time.monotonic
        self.started = self.clock()
        self.stopped_early = False
        self._durations: list[float] = []
        self._last = None

    def on_train_begin(self, logs=None):
        if self._last is None:
            self._last = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        now = self.clock()
        self._durations.append(now - (self._last or self.started))
        self._last = now
        spent = now - self.started
        recent = self._durations[-self.RECENT :]
        per_epoch = sum(recent) / len(recent)
        notes = []
        if self.budget is not None and self.replan is not None:
            target = self.budget.replanned(done, self.epochs, self._durations, self.reserve_seconds)
            if target is not None:
                mean = sum(self._durations) / len(self._durations)
                notes.append(f"re-planned from {self.epochs} to {target} epochs at {describe(mean)} an epoch")
                self.epochs = target
                self.replan(self.epochs)
        if done >= self.epochs:
            self.model.stop_training = True  # The fit may have been started with more epochs.
        line = f"run: epoch {done}/{self.epochs} ({100 * done / self.epochs:.0f}% of the schedule), {describe(spent)} training"
        line += f", about {describe(per_epoch * (self.epochs - done))} to go" if done < self.epochs else ", schedule complete"
        if self.budget is not None:
            line += f"; budget {describe(self.budget.seconds)}, {describe(self.budget.remaining())} left"
            if done < self.epochs and not self.budget.next_epoch_fits(per_epoch, self.reserve_seconds):
                self.model.stop_training = True
                self.stopped_early = True
                notes.append(f"stopping: the next epoch would not fit (the checkpoint is kept: --resume continues at epoch {done + 1})")
        line += "".join(f"; {note}" for note in notes)
        print(line, file=self.stream, flush=True)
        log.info("%s", line)
