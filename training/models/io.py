"""The two ends every built model shares: the ``pixels`` input and the ``probabilities`` output
(names from `training.interface.contract`)."""

from __future__ import annotations

import keras

from training.interface.contract import INPUT_NAME, OUTPUT_NAME
from training.task_config import TaskConfig


def pixel_input(config: TaskConfig) -> keras.KerasTensor:
    return keras.Input(shape=(*config.input_size, 3), dtype="float32", name=INPUT_NAME)


def classifier_output(x, num_classes: int):
    # float32 even under mixed precision: probabilities must sum to 1.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)(x)
