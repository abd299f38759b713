"""``--time-budget``'s one home: the budget, the reserve, the plan and the re-planning rule.

The budget counts from the command's start: data loading, cached features, the throughput probe,
training, the final evaluation and the export are all inside it. `training.probe` times the model
and hands its throughput to `Budget.plan`; the `Plan` it returns is typed from there to
``plan.json`` and back (`Plan.save`, `Plan.load`), so a resumed run keeps its schedule.
`training.run_recorder.RunProgress` asks `Budget.replanned` after every epoch and
`Budget.next_epoch_fits` before the next one; the AutoKeras search asks `Budget.search_seconds`.
Nothing else computes any of it. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("training")

# Validation runs forward passes only: about this many times the training throughput (measured
# on the task1 CNN here: 3.4x); the plan uses it to price each epoch's validation.
VALIDATION_SPEEDUP = 3.0
# Epoch times vary on a shared machine: the plan keeps this share of the time free.
SAFETY = 0.1
# What the export (SavedModel, ONNX, parity checks, model store) is given, in seconds.
EXPORT_SECONDS = 60.0
# And its int8 variant: six configurations quantized and measured (task1, 5,000 validation images: about 30 s).
INT8_SECONDS = 45.0
# Loading the saved model for the final evaluation, writing metrics and curves.
WRAP_UP_SECONDS = 5.0
# Each epoch's fixed cost besides its checkpoint (measured apart): starting validation, the
# history, TensorBoard. It is what counts when epochs are short (small data, cached features).
EPOCH_OVERHEAD_SECONDS = 0.15
# The AutoKeras search is given at least this much, however little is left.
MINIMUM_SEARCH_SECONDS = 60.0
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse(text: str) -> float:
    """Seconds in a duration such as ``30m``, ``2h``, ``1h30m`` or ``90s``."""
    match = _DURATION.fullmatch(text.strip().lower()) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"--time-budget must be a duration such as 30m, 2h, 1h30m or 90s, got {text!r}")
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"--time-budget must be longer than zero, got {text!r}")
    return total


def describe(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


@dataclasses.dataclass(frozen=True)
class Plan:
    """The epochs a budgeted run trains for, and what they were planned from."""

    time_budget_s: float
    epochs: int
    warmup_epochs: int
    images_per_second: float  # measured by the probe
    epoch_seconds: float  # estimated: training, validation, checkpoint and the fixed overhead
    reserve_seconds: float  # kept for the final evaluation and the export
    precision: str = "float32"  # what the run trains in (training.precision)
    precision_rates: dict = dataclasses.field(default_factory=dict)  # training images/s measured for each, where auto timed both
    precision_reason: str = ""  # why (training.precision.Choice.reason): measured, asked for, or not tried on this CPU

    def with_epochs(self, epochs: int) -> Plan:
        return dataclasses.replace(self, epochs=epochs)

    def to_json(self) -> dict:
        data = {key: round(value, 3) if isinstance(value, float) else value for key, value in dataclasses.asdict(self).items()}
        data["precision_rates"] = {name: round(rate, 1) for name, rate in self.precision_rates.items()}  # As metrics.json has them.
        return data

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        names = {field.name for field in dataclasses.fields(cls)}
        fields = dataclasses.fields(cls)
        required = {field.name for field in fields if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"plan.json lacks {', '.join(missing)}")
        return cls(**{name: data[name] for name in names if name in data})

    def save(self, path: Path) -> None:
        from training.run_dir import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Plan | None:
        """The plan saved at ``path``, or None when the run has none (it was not budgeted)."""
        path = Path(path)
        return cls.from_json(json.loads(path.read_text())) if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class Budget:
    seconds: float
    started: float  # clock() when the command started
    export: bool = True
    int8: bool = False  # The export builds the int8 variant too.
    clock: Callable[[], float] = dataclasses.field(default=time.monotonic, compare=False, repr=False)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def reserve(self, images_per_second: float | None = None, validation_images: int = 0) -> float:
        """Seconds kept for what follows training: evaluating the saved model (when its throughput is
        known), and the export."""
        evaluation = validation_images / (VALIDATION_SPEEDUP * images_per_second) if images_per_second else 0.0
        export = (EXPORT_SECONDS + (INT8_SECONDS if self.int8 else 0.0)) if self.export else 0.0
        return evaluation + WRAP_UP_SECONDS + export

    def epochs_that_fit(self, epoch_seconds: float, reserve_seconds: float, margin: float = 0.0) -> int:
        """Whole epochs of ``epoch_seconds`` that fit in what is left, less the reserve, a ``margin``
        and the `SAFETY` share (the one formula of the plan and of every re-plan)."""
        return math.floor((self.remaining() - reserve_seconds - margin) * (1 - SAFETY) / epoch_seconds)

    @staticmethod
    def epoch_seconds(images_per_second: float, train_images: int, validation_images: int, checkpoint_seconds: float = 0.0) -> float:
        """An epoch's price: training, validation (`VALIDATION_SPEEDUP` times as fast), its checkpoint
        and the fixed overhead."""
        epoch = train_images / images_per_second + validation_images / (VALIDATION_SPEEDUP * images_per_second)
        return epoch + checkpoint_seconds + EPOCH_OVERHEAD_SECONDS

    def plan(self, images_per_second: float, train_images: int, validation_images: int, warmup_epochs: int, checkpoint_seconds: float = 0.0) -> Plan:
        """The most epochs that fit in what is left of the budget (at least one), at the probe's throughput."""
        epoch = self.epoch_seconds(images_per_second, train_images, validation_images, checkpoint_seconds)
        kept = self.reserve(images_per_second, validation_images)
        epochs = self.epochs_that_fit(epoch, kept)
        if epochs < 1:
            left, one = describe(self.remaining()), describe(epoch)
            log.warning("time budget: %s left, one epoch takes about %s: training 1 epoch, over the budget", left, one)
            epochs = 1
        # The warm-up must leave room for the decay; with one or two epochs there is none.
        warmup = warmup_epochs if epochs > 2 * warmup_epochs else 0
        plan = Plan(self.seconds, epochs, warmup, images_per_second, epoch, kept)
        log.info(
            "time budget %s (%s left): %.0f training images/s measured, about %s an epoch: %d epochs planned, %s kept for evaluation and export",
            describe(self.seconds),
            describe(self.remaining()),
            images_per_second,
            describe(epoch),
            epochs,
            describe(kept),
        )
        return plan

    def replanned(self, done: int, epochs: int, durations: Sequence[float], reserve_seconds: float) -> int | None:
        """The schedule's new length after epoch ``done`` of ``epochs`` took ``durations`` (seconds,
        checkpoints included), or None to keep it.

        Epochs here swung between 87 s and 145 s on a shared machine. An epoch is priced at the run's
        mean, and the worst swing seen above it is kept free at the end. The schedule shrinks
        whenever it no longer fits, and grows only in its first half (a later growth would raise a
        learning rate already decayed)."""
        if done >= epochs or not durations:
            return None
        mean = sum(durations) / len(durations)
        target = done + self.epochs_that_fit(mean, reserve_seconds, margin=max(durations) - mean)
        if done < target < epochs or (target > epochs and done <= epochs / 2):
            return target
        return None

    def next_epoch_fits(self, epoch_seconds: float, reserve_seconds: float) -> bool:
        return self.remaining() - reserve_seconds >= epoch_seconds

    def search_seconds(self, share: float, final_fit_seconds: float = 0.0) -> float:
        """The AutoKeras search's seconds: ``share`` of what is left after the reserve (1 when no
        final fit follows it), but never so much that less than ``final_fit_seconds`` (what the
        final fit needs to reach the epochs its recipe is tuned for) would be left for the final
        fit; and at least ``share`` of `MINIMUM_SEARCH_SECONDS`."""
        left = self.remaining() - self.reserve()
        seconds = max(MINIMUM_SEARCH_SECONDS, left) * share
        return max(MINIMUM_SEARCH_SECONDS * share, min(seconds, left - final_fit_seconds))
