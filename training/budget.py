"""``--time-budget``: train for as many epochs as fit in a wall-clock budget, with the whole
schedule (warm-up, cosine decay to the end) completed inside it.

The budget counts from the command's start: data loading, cached features, the throughput probe,
training, the final evaluation and the export are all inside it. `measure` times a few training
steps on a throwaway copy of the model; `plan` turns that throughput into the epoch count;
`training.run_recorder.RunProgress` prints the run's overall position and ETA after every epoch
and stops the run, after that epoch's checkpoint, when the next epoch would not fit (so that
``--resume`` continues it). The plan is kept in the run (``plan.json``), so a resumed run keeps
its schedule.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable

log = logging.getLogger("training")

# Validation runs forward passes only: about this many times the training throughput (measured
# on the task1 CNN here: 3.4x); the plan uses it to price each epoch's validation.
VALIDATION_SPEEDUP = 3.0
# Epoch times vary on a shared machine: the plan keeps this share of the time free.
SAFETY = 0.1
# What the export (SavedModel, ONNX, parity checks, model store) is given, in seconds.
EXPORT_SECONDS = 60.0
# Each epoch's fixed cost besides its checkpoint (measured apart): starting validation, the
# history, TensorBoard. It is what counts when epochs are short (small data, cached features).
EPOCH_OVERHEAD_SECONDS = 0.15
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
class Budget:
    seconds: float
    started: float  # clock() when the command started
    export: bool = True
    clock: Callable[[], float] = dataclasses.field(default=time.monotonic, compare=False, repr=False)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.seconds - self.elapsed()


@dataclasses.dataclass(frozen=True)
class Plan:
    time_budget_s: float
    epochs: int
    warmup_epochs: int
    images_per_second: float  # measured by the probe
    epoch_seconds: float  # estimated: training, validation, checkpoint and the fixed overhead
    reserve_seconds: float  # kept for the final evaluation and the export

    def to_json(self) -> dict:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in dataclasses.asdict(self).items()}


def reserve(budget: Budget, images_per_second: float | None = None, validation_images: int = 0) -> float:
    """Seconds kept for what follows training: evaluating the saved model (when its throughput is
    known), and the export."""
    evaluation = validation_images / (VALIDATION_SPEEDUP * images_per_second) if images_per_second else 0.0
    return evaluation + 5.0 + (EXPORT_SECONDS if budget.export else 0.0)


def plan(
    budget: Budget, images_per_second: float, train_images: int, validation_images: int, warmup_epochs: int, checkpoint_seconds: float = 0.0
) -> Plan:
    """The most epochs that fit in what is left of the budget (at least one)."""
    epoch = train_images / images_per_second + validation_images / (VALIDATION_SPEEDUP * images_per_second)
    epoch += checkpoint_seconds + EPOCH_OVERHEAD_SECONDS
    kept = reserve(budget, images_per_second, validation_images)
    available = (budget.remaining() - kept) * (1 - SAFETY)
    epochs = max(1, math.floor(available / epoch))
    if available < epoch:
        log.warning(
            "time budget: %s left, one epoch takes about %s: training 1 epoch, over the budget", describe(budget.remaining()), describe(epoch)
        )
    # The warm-up must leave room for the decay; with one or two epochs there is none.
    warmup = warmup_epochs if epochs > 2 * warmup_epochs else 0
    return Plan(budget.seconds, epochs, warmup, images_per_second, epoch, kept)


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
