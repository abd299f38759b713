"""The training recipe a task compiles with: its optimiser, loss and metrics, and the callback that
moves the learning rate along its schedule."""

from __future__ import annotations

import keras

from training import schedule
from training.task_config import TaskConfig


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
