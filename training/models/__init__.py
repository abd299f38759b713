"""One builder per architecture; `build_model` turns a `TaskConfig` into a Keras model.

Every model takes raw RGB pixels, float32 0-255, at the task's input size (input ``pixels``),
does its own normalisation in its first layer, and outputs class probabilities
(output ``probabilities``, float32, even under mixed precision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

    from training.task_config import TaskConfig


def build_model(config: TaskConfig, num_classes: int, weights: str | None = None) -> keras.Model:
    """Builds the task's untrained model from ``config.model`` (its architecture's typed options,
    `training.model_options`); AutoKeras models come from `autokeras_search` instead.

    ``weights`` overrides ``config.weights`` for pretrained bases (e.g. "none" to rebuild a copy).
    """
    if config.architecture == "cnn":
        from training.models import cnn

        return cnn.build(config, num_classes)
    if config.architecture == "alexnet":
        from training.models import alexnet

        return alexnet.build(config, num_classes)
    if config.architecture == "xception":
        from training.models import xception

        return xception.build(config, num_classes, weights or config.weights)
    raise ValueError(f"task {config.name}: no builder for architecture {config.architecture!r}")
