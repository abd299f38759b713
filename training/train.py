"""Training one task end to end.

`train()` loads the task's data (decoded and resized once by `training.preprocessing`), builds
or resumes the model under a `tf.distribute` strategy, fits it with an atomic checkpoint at the
end of every epoch, then writes the float32 model, metrics, curves and confusion summary into
the run directory (see `training.run_dir` for the layout).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from training import budget as budget_module
from training import distribute, pipeline, preflight, reporting, schedule
from training.data import ImageDataset, Limits, load_dataset
from training.models import build_model, xception
from training.run_dir import RunDirectory, read_json, save_model_atomic, write_json
from training.run_recorder import FitResult, RunProgress, RunRecorder
from training.tasks import TaskConfig, with_overrides

log = logging.getLogger("training")

EVALUATION_BATCH = 256


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run a task (what is not part of the task's config)."""

    preset: str = "recommended"
    data_dir: str | None = None
    strategy: str = "default"
    resume: bool = False
    init_run: str | None = None
    verbose: str | int = "auto"
    # --time-budget: the epochs are planned from a measured throughput to fit it (training.budget).
    budget: budget_module.Budget | None = None


def make_optimizer(config: TaskConfig) -> keras.optimizers.Optimizer:
    """The task's optimizer, at the schedule's first rate (`learning_rate_schedule` moves it)."""
    learning_rate = config.learning_rate * (schedule.WARMUP_START if config.schedule == "cosine" and config.warmup_epochs else 1.0)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=config.momentum)


def learning_rate_schedule(config: TaskConfig, steps_per_epoch: int) -> schedule.LearningRateSchedule | None:
    """The callback that moves the rate along the task's schedule (None for a constant rate)."""
    if config.schedule != "cosine":
        return None
    return schedule.LearningRateSchedule(config.learning_rate, steps_per_epoch, config.epochs, config.warmup_epochs)


def compile_model(model: keras.Model, config: TaskConfig, num_classes: int) -> None:
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
        ],
    )


def _initial_model(config: TaskConfig, dataset: ImageDataset, init_run: str | None) -> keras.Model:
    if not config.init_from:
        policy = "mixed_bfloat16" if config.mixed_precision else "float32"
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return build_model(config, dataset.num_classes)
        finally:
            keras.config.set_dtype_policy(previous)
    source = preflight.check_init_run(config, init_run)
    labels = read_json(source / "labels.json")
    if tuple(labels["class_ids"]) != dataset.class_ids:
        raise ValueError(f"--init-run {source} was trained on other classes than this dataset's")
    model = keras.models.load_model(source / "model.keras")
    if config.unfreeze_from_block is not None:
        count = xception.unfreeze_top(model, config.unfreeze_from_block)
        log.info("fine-tuning: %d Xception layers unfrozen from block %d", count, config.unfreeze_from_block)
    return model


def _copy(model: keras.Model) -> keras.Model:
    """``model`` with its weights, rebuilt in the current distribution strategy's scope."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _cached_features(run: RunDirectory, name: str, features: keras.Model, images: np.ndarray) -> np.ndarray:
    """The frozen base's features for ``images``, computed once and cached (float16) in the run."""
    path = run / "features" / f"{name}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    shape = (len(images), *features.output.shape[1:])
    temporary = path.with_name(f".{name}.tmp.npy")
    cache = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
    for begin in range(0, len(images), EVALUATION_BATCH):
        batch = images[begin : begin + EVALUATION_BATCH].astype(np.float32)
        cache[begin : begin + len(batch)] = features.predict_on_batch(batch).astype(np.float16)
    cache.flush()
    del cache
    temporary.replace(path)
    seconds = time.perf_counter() - start
    log.info("cached %s features of %d images in %.1f s (%.0f images/s)", name, len(images), seconds, len(images) / max(seconds, 1e-9))
    return np.load(path, mmap_mode="r")


def _plan(config: TaskConfig, model: keras.Model, train_data, dataset: ImageDataset, run: RunDirectory, budget, strategy, steps_per_epoch: int):
    """Times a throwaway copy of ``model`` on a few batches and one checkpoint save of it, and plans
    the epochs that fit the budget."""
    with strategy.scope():
        probe = keras.models.clone_model(model)
        compile_model(probe, config, dataset.num_classes)
    images_per_second = budget_module.measure(probe, train_data)
    scratch = run / "checkpoint" / "probe.keras"
    start = time.perf_counter()
    save_model_atomic(probe, scratch)
    checkpoint_seconds = time.perf_counter() - start
    scratch.unlink()
    del probe
    plan = budget_module.plan(budget, images_per_second, len(dataset.train), len(dataset.validation), config.warmup_epochs, checkpoint_seconds)
    log.info(
        "time budget %s (%s left): %.0f training images/s measured, about %s an epoch: %d epochs planned, %s kept for evaluation and export",
        budget_module.describe(budget.seconds),
        budget_module.describe(budget.remaining()),
        images_per_second,
        budget_module.describe(plan.epoch_seconds),
        plan.epochs,
        budget_module.describe(plan.reserve_seconds),
    )
    return plan


def fit(
    config: TaskConfig,
    dataset: ImageDataset,
    run: RunDirectory,
    strategy,
    state: dict | None,
    options: RunOptions,
    chief: bool,
    model: keras.Model | None = None,
) -> FitResult:
    """Fits the task's model (``model``, or a new one) with the task's recipe; resumes from ``state``."""
    num_classes = dataset.num_classes
    steps_per_epoch = max(1, -(-len(dataset.train) // config.batch_size))
    history = list(state["history"]) if state else []
    initial_epoch = state["epoch"] if state else 0
    full_start = run / "checkpoint" / "full_start.keras"
    with strategy.scope():
        if config.bottleneck:
            full = keras.models.load_model(full_start) if full_start.is_file() else _initial_model(config, dataset, options.init_run)
            if not full_start.is_file():
                save_model_atomic(full, full_start)
            features_model, head = xception.split_for_bottleneck(full)
        if state:
            trained = keras.models.load_model(run.checkpoint_model)
            log.info("resuming %s from epoch %d", run.path, initial_epoch)
        else:
            trained = head if config.bottleneck else _initial_model(config, dataset, options.init_run) if model is None else _copy(model)
    extra = {}
    train_x, validation_x = dataset.train.images, dataset.validation.images
    if config.bottleneck:
        start = time.perf_counter()
        train_x = _cached_features(run, "train", features_model, train_x)
        validation_x = _cached_features(run, "validation", features_model, validation_x)
        extra["feature_seconds"] = round(time.perf_counter() - start, 3)
    train_data = pipeline.training_dataset(train_x, dataset.train.labels, num_classes, config.batch_size, config.augment, config.seed)
    validation_data = pipeline.evaluation_dataset(validation_x, dataset.validation.labels, num_classes, EVALUATION_BATCH)
    plan_file = run / "plan.json"
    planned = None  # The time budget's plan, as plan.json holds it.
    if state and plan_file.is_file():  # A budgeted run resumes with the schedule it planned.
        planned = read_json(plan_file)
    elif not state and options.budget is not None:
        planned = _plan(config, trained, train_data, dataset, run, options.budget, strategy, steps_per_epoch).to_json()
        write_json(plan_file, planned)
    if planned:
        config = with_overrides(config, epochs=planned["epochs"], warmup_epochs=planned["warmup_epochs"])
    if not state:
        with strategy.scope():
            compile_model(trained, config, num_classes)
    recorder = RunRecorder(run, history, state["train_seconds"] if state else 0.0, len(dataset.train))
    reserve = planned["reserve_seconds"] if planned else (budget_module.reserve(options.budget) if options.budget else 0.0)
    rates = learning_rate_schedule(config, steps_per_epoch)

    def replan(epochs: int) -> None:  # A budgeted run moves its schedule's end to what fits.
        if rates is not None:
            rates.epochs = epochs
        planned["epochs"] = epochs
        write_json(plan_file, planned)

    progress = RunProgress(config.epochs, initial_epoch, options.budget, reserve, replan=replan if planned and options.budget else None)
    callbacks = [recorder, progress] + ([rates] if rates else [])
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run / "logs"), write_graph=False, update_freq="epoch"))
    # A re-planned schedule may grow past the epochs a fit was started with: fit on to its end.
    while initial_epoch < progress.epochs and not progress.stopped_early:
        trained.fit(
            train_data,
            validation_data=validation_data if len(dataset.validation) else None,
            epochs=progress.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=options.verbose,
        )
        if len(recorder.history) == initial_epoch:
            break  # Nothing ran (stopped before its first epoch).
        initial_epoch = len(recorder.history)
    if planned or options.budget is not None:
        planned = planned or {}
        extra.update(
            {
                "time_budget_s": planned.get("time_budget_s"),
                "epochs_planned": progress.epochs,
                "probe_images_per_second": planned.get("images_per_second"),
                "stopped_by_budget": progress.stopped_early,
            }
        )
    if config.bottleneck:
        head.set_weights(trained.get_weights())
        trained = full
    return FitResult(trained, recorder.history, recorder.train_seconds, len(dataset.train) * len(recorder.history), extra)


def _search(config: TaskConfig, dataset: ImageDataset, run: RunDirectory, strategy, state, options: RunOptions, chief: bool) -> FitResult:
    """Task 2: the AutoKeras search, then (``final_fit``) the best model trained on with the task's recipe."""
    from training.models import autokeras_search

    if options.budget is not None:  # The search and the final fit share the budget, less evaluation and export.
        left = max(60.0, options.budget.remaining() - budget_module.reserve(options.budget))
        search_seconds = left * (config.search_share if config.final_fit else 1.0)
        config = with_overrides(config, time_budget_hours=search_seconds / 3600)
        log.info("time budget: the search gets %s", budget_module.describe(search_seconds))
    searched = autokeras_search.search(config, dataset, run, options)
    if not config.final_fit:
        return searched
    log.info("final fit: the best model of the search, trained on with the task's recipe")
    result = fit(config, dataset, run, strategy, state, options, chief, model=searched.model)
    result.extra.update({f"search_{key}" if not key.startswith("search") else key: value for key, value in searched.extra.items()})
    result.extra["search_epochs"] = len(searched.history)
    return result


def float32_model(config: TaskConfig, model: keras.Model, num_classes: int) -> keras.Model:
    """A float32 copy of a mixed-precision model, for export and serving."""
    if not config.mixed_precision:
        return model
    copy = build_model(config, num_classes, weights="none")
    copy.set_weights(model.get_weights())
    return copy


def predict_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    outputs = [
        np.asarray(model.predict_on_batch(images[i : i + EVALUATION_BATCH].astype(np.float32))) for i in range(0, len(images), EVALUATION_BATCH)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output.shape[-1]), np.float32)


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


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
    state = run.prepare(config.name, options.preset, options.resume)
    if not options.resume:
        write_json(
            run / "config.json",
            {
                "task": config.to_json(),
                "preset": options.preset,
                "data_dir": options.data_dir,
                "strategy": options.strategy,
                "init_run": options.init_run,
                "command": sys.argv,
                "started": datetime.datetime.now(datetime.UTC).isoformat(),
                "versions": _versions(),
            },
        )
    handler = _attach_log(run / "train.log")
    try:
        keras.utils.set_random_seed(config.seed)
        log.info("task %s preset %s -> %s", config.name, options.preset, run.path)
        dataset = load_dataset(config.dataset, options.data_dir, config.input_size, Limits(config.max_train_images, config.max_validation_images))
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
        if config.architecture == "autokeras":
            result = _search(config, dataset, run, strategy, state, options, chief)
        else:
            result = fit(config, dataset, run, strategy, state, options, chief)
        save_model_atomic(float32_model(config, result.model, dataset.num_classes), run / "model.keras")
        # Evaluate the saved artifact itself, outside any distribution strategy.
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
        if result.history:
            reporting.plot_curves(result.history, run / "curves.png", f"{config.name} ({options.preset}): {config.title}")
        log.info("done: val top-1 %.4f, top-5 %.4f, %.1f s training", metrics["val_top1"], metrics["val_top5"], result.train_seconds)
        return run.path if chief else None
    finally:
        log.removeHandler(handler)
        handler.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _versions() -> dict:
    import tensorflow as tf

    return {"python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
