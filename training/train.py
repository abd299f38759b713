"""Training one task end to end: the run folder, the data, the fit (or task2's search and fit),
then the float32 model, its evaluation, metrics, curves and confusion summary in the run.

`train()` loads the task's data (decoded and resized once by `training.interface.preprocessing`), fits it
under a `tf.distribute` strategy (`training.fit`, `training.search`), and writes what
`training.run_dir` describes.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from training import distribute, precision, reporting
from training.data import ImageDataset, Limits, load_dataset
from training.evaluation import predict_probabilities
from training.fit import fit
from training.run_context import RunContext, RunOptions
from training.run_dir import RunDirectory, save_model_atomic, write_json
from training.run_recorder import FitResult
from training.search import search_and_fit
from training.task_config import TaskConfig

log = logging.getLogger("training")

__all__ = ["RunOptions", "train"]


def train(config: TaskConfig, run_dir: str | Path, options: RunOptions = RunOptions()) -> Path | None:
    """Trains ``config`` into ``run_dir``; returns the run directory (None on non-chief workers)."""
    if options.strategy == "multi-worker" and config.bottleneck:
        raise ValueError(
            f"task {config.name}: cached bottleneck features are not supported with --strategy multi-worker; use --strategy default or mirrored"
        )
    strategy = distribute.make_strategy(options.strategy)  # Multi-worker must start before other TF work.
    chief = distribute.is_chief()
    scratch = None
    if not chief:  # In the temporary folder ($TMPDIR), removed at the end: the chief writes the run.
        scratch = tempfile.mkdtemp(prefix=f"worker{distribute.worker_index()}-")
        print(f"worker {distribute.worker_index()}: scratch folder {scratch} (removed when the worker ends)", file=sys.stderr)
    run = RunDirectory(run_dir if chief else scratch)
    state = run.prepare(config.name, options.preset, options.resume, config.to_json() if chief else None)
    if not options.resume:
        _write_config(run, config, options)
    handler = _attach_log(run / "train.log")
    try:
        keras.utils.set_random_seed(config.seed)
        log.info("task %s preset %s -> %s", config.name, options.preset, run.path)
        dataset = _load(config, options, run)
        context = RunContext(run, strategy, options, chief, state)
        result = search_and_fit(config, dataset, context) if config.architecture == "autokeras" else fit(config, dataset, context)
        save_model_atomic(precision.saved_copy(result.model), run / "model.keras")
        metrics = _evaluate(config, dataset, run, options, result)
        if result.history:
            reporting.plot_curves(result.history, run / "curves.png", f"{config.name} ({options.preset}): {config.title}")
        log.info("done: val top-1 %.4f, top-5 %.4f, %.1f s training", metrics["val_top1"], metrics["val_top5"], result.train_seconds)
        return run.path if chief else None
    finally:
        log.removeHandler(handler)
        handler.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _load(config: TaskConfig, options: RunOptions, run: RunDirectory) -> ImageDataset:
    dataset = load_dataset(config.dataset, options.data_dir, config.input_size, Limits(config.max_train_images, config.max_validation_images))
    if options.extra_data:
        from training.data import extra

        dataset, added = extra.add(dataset, options.extra_data, config.input_size, options.extra_repeat)
        write_json(run / "extra_data.json", added)
        log.info("extra data: %d images from %s (x%d): %s", added["images"], added["folder"], added["repeat"], added["per_class"])
    log.info(
        "data: %d training and %d validation images, %d classes, %d files skipped",
        len(dataset.train),
        len(dataset.validation),
        dataset.num_classes,
        len(dataset.skipped),
    )
    for skipped in dataset.skipped:
        log.warning("skipped %s: %s", skipped.path, skipped.reason)
    for problem in dataset.problems:
        log.warning("%s", problem)
    write_json(run / "labels.json", {"class_ids": list(dataset.class_ids), "class_names": list(dataset.class_names)})
    return dataset


def _evaluate(config: TaskConfig, dataset: ImageDataset, run: RunDirectory, options: RunOptions, result: FitResult) -> dict:
    """Evaluates the saved artefact itself, outside any distribution strategy; writes metrics.json
    and confusion.json."""
    model = keras.models.load_model(run / "model.keras")
    probabilities = predict_probabilities(model, dataset.validation.images)
    metrics = reporting.evaluate_probabilities(probabilities, dataset.validation.labels, dataset.class_ids, dataset.class_names)
    metrics.update(
        {
            "task": config.name,
            "preset": options.preset,
            "epochs_completed": len(result.history),
            "train_seconds": round(result.train_seconds, 3),
            "images_per_second": round(result.train_images / result.train_seconds, 1) if result.train_seconds else None,
            "parameters": int(model.count_params()),
            "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "training_images": len(dataset.train),
            **({"time_budget_s": options.budget.seconds} if options.budget else {}),
            "skipped_images": len(dataset.skipped),
            **result.extra,
        }
    )
    write_json(run / "confusion.json", metrics.pop("most_confused"))
    write_json(run / "metrics.json", metrics)
    return metrics


def _write_config(run: RunDirectory, config: TaskConfig, options: RunOptions) -> None:
    import tensorflow as tf

    write_json(
        run / "config.json",
        {
            "task": config.to_json(),
            "preset": options.preset,
            "data_dir": options.data_dir,
            "strategy": options.strategy,
            "init_run": options.init_run,
            "extra_data": options.extra_data,
            "extra_repeat": options.extra_repeat,
            "command": sys.argv,
            "started": datetime.datetime.now(datetime.UTC).isoformat(),
            "versions": {"python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        },
    )


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler
