"""How a run is run: the command's options (`RunOptions`), and what every fit of the run is handed
with them (`RunContext`: the run folder, the distribution strategy, the resumed state)."""

from __future__ import annotations

import dataclasses
from typing import Any

from training.budget import Budget
from training.run_dir import RunDirectory


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run a task (what is not part of the task's config)."""

    preset: str = "recommended"
    data_dir: str | None = None
    strategy: str = "default"
    resume: bool = False
    init_run: str | None = None
    # --extra-data: an image folder whose images join the training split (--extra-repeat times each).
    extra_data: str | None = None
    extra_repeat: int = 1
    verbose: str | int = "auto"
    # --time-budget: the epochs are planned from a measured throughput to fit it (training.budget).
    budget: Budget | None = None


@dataclasses.dataclass(frozen=True)
class RunContext:
    run: RunDirectory
    strategy: Any  # a tf.distribute.Strategy
    options: RunOptions
    chief: bool = True
    state: dict | None = None  # The checkpoint's state when resuming (epoch, train_seconds, history).
