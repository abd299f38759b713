"""Checks that a training command can start, run before TensorFlow is imported: a mistake in the
command line is reported in a fraction of a second, not after the seconds that importing
TensorFlow and Keras take. `training.train` makes the same checks again where it acts on them."""

from __future__ import annotations

from pathlib import Path

from training.data import check_layout, class_ids
from training.models.weights import weights_file_error
from training.run_dir import RunDirectory, read_json
from training.task_config import TaskConfig


def check_init_run(config: TaskConfig, init_run: str | None) -> Path | None:
    """The run a task starts from, checked: task6 needs a task5 run; any other task may start from
    a finished run of itself (None: it starts fresh)."""
    if init_run is None:
        if config.init_from:
            raise ValueError(f"task {config.name} fine-tunes a trained {config.init_from} model: pass --init-run RUN_DIR")
        return None
    source = Path(init_run)
    if not (source / "model.keras").is_file() or not (source / "config.json").is_file():
        raise ValueError(f"--init-run {source} holds no finished run (model.keras and config.json expected)")
    source_task = read_json(source / "config.json").get("task", {}).get("name")
    expected = config.init_from or config.name
    if source_task != expected:
        raise ValueError(f"--init-run {source} is a {source_task} run; task {config.name} starts from a {expected} run")
    return source


def check(
    config: TaskConfig,
    run_dir: Path,
    preset: str,
    resume: bool,
    init_run: str | None,
    multi_worker: bool,
    data_dir: str | None = None,
    extra_data: str | None = None,
) -> None:
    """Raises the error `train` would raise for a bad run folder, dataset, extra folder, start run or weights file."""
    # The run folder first: a folder holding another run is refused whatever the data.
    if not multi_worker:  # Other workers of a multi-worker run write to scratch folders, not run_dir.
        RunDirectory(run_dir).check(config.name, preset, resume, config.to_json())
    check_layout(config.dataset, data_dir)
    if extra_data is not None:
        from training.data import extra

        extra.check(extra_data, class_ids(config.dataset, data_dir))
    check_init_run(config, init_run)
    if config.weights not in (None, "none", "imagenet") and not Path(config.weights).is_file():
        raise weights_file_error(Path(config.weights))
