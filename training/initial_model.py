"""The model a fit starts from: a new one built in the run's precision, or a trained run's
(``--init-run``, with the fine-tuning set-up), or a copy."""

from __future__ import annotations

import logging

import keras

from training import precision, preflight
from training.data import ImageDataset
from training.models import build_model, xception
from training.run_dir import read_json
from training.task_config import TaskConfig

log = logging.getLogger("training")


def initial_model(config: TaskConfig, dataset: ImageDataset, init_run: str | None) -> keras.Model:
    if not config.init_from and init_run is None:
        if config.precision not in precision.POLICIES:
            raise ValueError(f"task {config.name}: precision {config.precision!r} must be resolved before the model is built")
        with precision.policy(config.precision):
            return build_model(config, dataset.num_classes)
    source = preflight.check_init_run(config, init_run)
    labels = read_json(source / "labels.json")
    if tuple(labels["class_ids"]) != dataset.class_ids:
        raise ValueError(f"--init-run {source} was trained on other classes than this dataset's")
    model = keras.models.load_model(source / "model.keras")
    log.info("starting from %s's trained model", source)
    if config.init_from and config.unfreeze_from_block is not None:
        count = xception.unfreeze_top(model, config.unfreeze_from_block)
        log.info("fine-tuning: %d Xception layers unfrozen from block %d", count, config.unfreeze_from_block)
    return model


def copy_model(model: keras.Model) -> keras.Model:
    """``model`` with its weights, rebuilt in the current distribution strategy's scope."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
