"""One builder per architecture; `build_model` turns a `TaskConfig` into a Keras model.

Every model takes raw RGB pixels, float32 0-255, at the task's input size (input ``pixels``),
does its own normalisation in its first layer, and outputs class probabilities
(output ``probabilities``, float32, even under mixed precision).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from training.tasks import TaskConfig

if TYPE_CHECKING:
    import keras


def _call_builder(builder, config: TaskConfig, **kwargs) -> keras.Model:
    accepted = set(inspect.signature(builder).parameters)
    unknown = sorted(set(config.model) - accepted)
    if unknown:
        raise ValueError(
            f"task {config.name}: {config.architecture} has no option {', '.join(unknown)}; "
            f"options: {', '.join(sorted(accepted - {'config', 'num_classes', 'weights'}))}"
        )
    return builder(config=config, **kwargs, **config.model)


def build_model(config: TaskConfig, num_classes: int, weights: str | None = None) -> keras.Model:
    """Builds the task's untrained model (AutoKeras models come from `autokeras_search` instead).

    ``weights`` overrides ``config.weights`` for pretrained bases (e.g. "none" to rebuild a copy).
    """
    if config.architecture == "cnn":
        from training.models import cnn

        return _call_builder(cnn.build, config, num_classes=num_classes)
    if config.architecture == "alexnet":
        from training.models import alexnet

        return _call_builder(alexnet.build, config, num_classes=num_classes)
    if config.architecture == "xception":
        from training.models import xception

        return _call_builder(xception.build, config, num_classes=num_classes, weights=weights or config.weights)
    raise ValueError(f"task {config.name}: no builder for architecture {config.architecture!r}")
