"""Task 2's run: the AutoKeras search (`training.models.autokeras_search`), then, with
``final_fit``, the best model trained on with the task's recipe (`training.fit`); under a time
budget the two share what the budget leaves."""

from __future__ import annotations

import logging

from training import fit
from training.budget import describe
from training.data import ImageDataset
from training.run_context import RunContext
from training.run_recorder import FitResult
from training.task_config import TaskConfig

log = logging.getLogger("training")


def search_and_fit(config: TaskConfig, dataset: ImageDataset, context: RunContext) -> FitResult:
    from training.models import autokeras_search

    budget = context.options.budget
    seconds = config.time_budget_hours * 3600 if config.time_budget_hours else None
    if budget is not None:  # The search and the final fit share the budget, less evaluation and export.
        seconds = budget.search_seconds(config.search_share if config.final_fit else 1.0)
        log.info("time budget: the search gets %s", describe(seconds))
    searched = autokeras_search.search(config, dataset, context.run, context.options, seconds)
    if not config.final_fit:
        return searched
    log.info("final fit: the best model of the search, trained on with the task's recipe")
    result = fit.fit(config, dataset, context, model=searched.model)
    result.extra.update({f"search_{key}" if not key.startswith("search") else key: value for key, value in searched.extra.items()})
    result.extra["search_epochs"] = len(searched.history)
    return result
