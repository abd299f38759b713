"""Task 2's run: the AutoKeras search (`training.models.autokeras_search`), then, with
``final_fit``, the best model trained on with the task's recipe (`training.fit`); under a time
budget the two share what the budget leaves."""

from __future__ import annotations

import logging

from training import fit, pipeline, precision, probe
from training.budget import Budget, describe
from training.data import ImageDataset
from training.run_context import RunContext
from training.run_dir import read_json, write_json
from training.run_recorder import FitResult
from training.task_config import TaskConfig, with_overrides

log = logging.getLogger("training")


def search_and_fit(config: TaskConfig, dataset: ImageDataset, context: RunContext) -> FitResult:
    from training.models import autokeras_search

    if context.options.init_run:  # A trained task2 model continues with the final fit's recipe: no new search.
        log.info("starting from %s: no search, the task's recipe trains on", context.options.init_run)
        return fit.fit(config, dataset, context)
    budget = context.options.budget
    seconds = config.time_budget_hours * 3600 if config.time_budget_hours else None
    choice = _precision(config, dataset, context)
    if budget is not None:  # The search and the final fit share the budget, less evaluation and export.
        needed = _final_fit_seconds(config, dataset, choice)
        seconds = budget.search_seconds(config.search_share if config.final_fit else 1.0, needed)
        kept = f", the final fit at least {describe(needed)} ({config.reference_epochs} epochs)" if needed else ""
        log.info("time budget: the search gets %s (%.0f%% of what is left%s)", describe(seconds), 100 * config.search_share, kept)
    with precision.policy(choice.precision):  # The trials' models are built in it.
        searched = autokeras_search.search(config, dataset, context.run, context.options, seconds)
    searched.extra.update(choice.to_json())
    if not config.final_fit:
        return searched
    log.info("final fit: the best model of the search, trained on with the task's recipe")
    result = fit.fit(config, dataset, context, model=searched.model)
    result.extra.update({f"search_{key}" if not key.startswith("search") else key: value for key, value in searched.extra.items()})
    result.extra.update(choice.to_json())
    return result


def _final_fit_seconds(config: TaskConfig, dataset: ImageDataset, choice: precision.Choice) -> float:
    """What the final fit needs to train task1's network (the search space's first) for
    ``reference_epochs``, the schedule its recipe is tuned for, at the rate the precision probe
    measured (0 when it measured none: the share alone decides)."""
    rate = choice.rates.get(choice.precision)
    if not config.final_fit or not rate:
        return 0.0
    epoch = Budget.epoch_seconds(rate, len(dataset.train), len(dataset.validation))
    return config.reference_epochs * epoch


def _precision(config: TaskConfig, dataset: ImageDataset, context: RunContext) -> precision.Choice:
    """The search's precision: ``auto`` times the search space's first network, task1's CNN (a
    search resumes in the precision it chose, kept in precision.json)."""
    saved = context.run / "precision.json"
    if context.options.resume and saved.is_file():
        return precision.Choice.from_json(read_json(saved))
    if config.precision != "auto":
        choice = precision.Choice(config.precision, f"{config.precision} was asked for")
    else:
        from training.models import autokeras_space, build_model

        network = with_overrides(config, architecture="cnn", model=autokeras_space.task1_network(), precision="float32", final_fit=False)
        train = dataset.train
        data = pipeline.training_dataset(train.images, train.labels, dataset.num_classes, config.batch_size, config.augment, config.seed)
        choice = probe.choose_precision(config, lambda: build_model(network, dataset.num_classes), dataset.num_classes, data, context.strategy)
    write_json(saved, choice.to_json())
    return choice
