"""One fit of a task's model with the task's recipe: the starting model, the input pipelines, the
time budget's plan, and epochs fitted to the (possibly re-planned) schedule's end, each one
checkpointed (`training.run_recorder`)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import keras

from training import features, pipeline, precision, probe, recipe, regularization
from training.budget import Plan
from training.data import ImageDataset
from training.evaluation import EVALUATION_BATCH
from training.initial_model import copy_model, initial_model
from training.models import batch_norm, build_model
from training.run_context import RunContext
from training.run_recorder import FitResult, RunProgress, RunRecorder
from training.schedule import LearningRateSchedule
from training.task_config import TaskConfig, with_overrides

log = logging.getLogger("training")

REGISTERED = (batch_norm.BatchNormalization,)  # Checkpoints hold it: resuming loads it by its registered name.


@dataclasses.dataclass
class _Replan:
    """What a budgeted run does when `RunProgress` re-plans: moves the learning-rate schedule's end
    and rewrites plan.json."""

    plan: Plan
    path: Path
    rates: LearningRateSchedule | None

    def __call__(self, epochs: int) -> None:
        if self.rates is not None:
            self.rates.epochs = epochs
        self.plan = self.plan.with_epochs(epochs)
        self.plan.save(self.path)


def fit(config: TaskConfig, dataset: ImageDataset, context: RunContext, model: keras.Model | None = None) -> FitResult:
    """Fits the task's model (``model``, or the task's starting model) with the task's recipe;
    resumes from ``context.state``."""
    run, state, options = context.run, context.state, context.options
    # auto times a model built from scratch; one that continues a trained model keeps that model's
    # precision, and a frozen base's head (seconds a run, on cached features) trains in float32.
    timed = config.precision == "auto" and not (state or model is not None or config.init_from or options.init_run or config.bottleneck)
    if config.precision == "auto" and not timed:
        config = with_overrides(config, precision="float32")
    with context.strategy.scope():
        if config.bottleneck:
            full, features_model, head = features.split(config, dataset, run, options.init_run)
        if state:
            trained = keras.models.load_model(run.checkpoint_model)
            log.info("resuming %s from epoch %d", run.path, state["epoch"])
        elif config.bottleneck:
            trained = head
    extra = {}
    train_x, validation_x = dataset.train.images, dataset.validation.images
    if config.bottleneck:
        start = time.perf_counter()
        train_x = features.cached(run, "train", features_model, train_x)
        validation_x = features.cached(run, "validation", features_model, validation_x)
        extra["feature_seconds"] = round(time.perf_counter() - start, 3)
    train_data = pipeline.training_dataset(
        train_x, dataset.train.labels, dataset.num_classes, config.batch_size, config.augment, config.seed, config.cutmix
    )
    validation_data = pipeline.evaluation_dataset(validation_x, dataset.validation.labels, dataset.num_classes, EVALUATION_BATCH)
    choice = None
    if timed:
        choice = probe.choose_precision(config, lambda: build_model(config, dataset.num_classes), dataset.num_classes, train_data, context.strategy)
        config = with_overrides(config, precision=choice.precision)
    if not state and not config.bottleneck:
        with context.strategy.scope():
            trained = initial_model(config, dataset, options.init_run) if model is None else copy_model(model)
    if choice is None:
        continued = state or model is not None or config.init_from or options.init_run
        choice = precision.Choice(precision.of_model(trained), "the model it continues" if continued else "as configured")
    extra.update(choice.to_json())
    plan = _plan(config, trained, train_data, dataset, context, choice)
    if plan is not None:
        config = with_overrides(config, epochs=plan.epochs, warmup_epochs=plan.warmup_epochs)
    scaled = regularization.for_schedule(config, config.epochs)
    if scaled is not None:  # The regularisation the planned schedule needs (a resumed run re-plans the same).
        log.info(
            "regularisation for %d epochs (strength %.2f of the long schedule's): %s",
            config.epochs,
            scaled.strength,
            ", ".join(f"{name} {value:.4g}" for name, value in scaled.values.items()),
        )
        cutmix = config.cutmix
        config = with_overrides(config, **scaled.values)
        extra["regularization"] = scaled.to_json()
        if config.cutmix != cutmix:
            train_data = pipeline.training_dataset(
                train_x, dataset.train.labels, dataset.num_classes, config.batch_size, config.augment, config.seed, config.cutmix
            )
    if not state:
        with context.strategy.scope():
            recipe.compile_model(trained, config, dataset.num_classes)
    recorder, progress, callbacks = _callbacks(config, dataset, context, plan)
    _fit_to_the_schedules_end(trained, train_data, validation_data if len(dataset.validation) else None, callbacks, recorder, progress, options)
    if plan is not None or options.budget is not None:
        saved = plan.to_json() if plan else {}  # As plan.json holds it.
        extra.update(
            {
                "time_budget_s": saved.get("time_budget_s"),
                "epochs_planned": progress.epochs,
                "probe_images_per_second": saved.get("images_per_second"),
                "stopped_by_budget": progress.stopped_early,
            }
        )
    if config.bottleneck:
        head.set_weights(trained.get_weights())
        trained = full
    return FitResult(trained, recorder.history, recorder.train_seconds, len(dataset.train) * len(recorder.history), extra)


def _plan(config: TaskConfig, model: keras.Model, train_data, dataset: ImageDataset, context: RunContext, choice: precision.Choice) -> Plan | None:
    """The time budget's plan: the one the run saved (a resumed run keeps its schedule), else one
    from a throughput probe (None without a budget)."""
    path = context.run / "plan.json"
    if context.state:
        return Plan.load(path)
    if context.options.budget is None:
        return None
    plan = probe.plan(config, model, train_data, dataset, context.run, context.options.budget, context.strategy, choice)
    plan.save(path)
    return plan


def _callbacks(config: TaskConfig, dataset: ImageDataset, context: RunContext, plan: Plan | None):
    state, budget = context.state, context.options.budget
    recorder = RunRecorder(context.run, list(state["history"]) if state else [], state["train_seconds"] if state else 0.0, len(dataset.train))
    reserve = plan.reserve_seconds if plan else (budget.reserve() if budget else 0.0)
    rates = recipe.learning_rate_schedule(config, max(1, -(-len(dataset.train) // config.batch_size)))
    replan = _Replan(plan, context.run / "plan.json", rates) if plan and budget else None
    progress = RunProgress(config.epochs, state["epoch"] if state else 0, budget, reserve, replan=replan)
    callbacks = [recorder, progress] + ([rates] if rates else [])
    if context.chief:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(context.run / "logs"), write_graph=False, update_freq="epoch"))
    return recorder, progress, callbacks


def _fit_to_the_schedules_end(model, train_data, validation_data, callbacks, recorder: RunRecorder, progress: RunProgress, options) -> None:
    """Fits until the schedule's end; a re-planned schedule may grow past the epochs a fit was
    started with, so the fit goes on to its end."""
    initial_epoch = progress.initial
    while initial_epoch < progress.epochs and not progress.stopped_early:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=progress.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=options.verbose,
        )
        if len(recorder.history) == initial_epoch:
            break  # Nothing ran (stopped before its first epoch).
        initial_epoch = len(recorder.history)
