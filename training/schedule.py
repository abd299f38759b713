"""The learning-rate schedule: linear warm-up, then cosine decay to zero at the last planned step.

The rate is set on the optimizer before every batch by `LearningRateSchedule` (a callback), not
baked into the compiled training step, so that a time-budgeted run can re-plan its number of
epochs between epochs (see `training.run_recorder.RunProgress`) and still end with the decay
complete. The curve is the one of Keras' ``CosineDecay`` with a warm-up from a tenth of the peak
and ``alpha=0``.
"""

from __future__ import annotations

import math

import keras

WARMUP_START = 0.1  # The warm-up starts at this share of the peak rate.


def learning_rate_at(step: int, peak: float, total_steps: int, warmup_steps: int = 0) -> float:
    """The rate at ``step`` (0-based) of a schedule of ``total_steps`` whose first ``warmup_steps`` warm up."""
    if warmup_steps and step < warmup_steps:
        start = peak * WARMUP_START
        return start + (peak - start) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's rate before every batch from the epoch, the batch and the planned
    ``epochs``, which may change between epochs (a re-planned time budget)."""

    def __init__(self, peak: float, steps_per_epoch: int, epochs: int, warmup_epochs: int = 0):
        super().__init__()
        self.peak, self.steps_per_epoch, self.epochs, self.warmup_epochs = peak, steps_per_epoch, epochs, warmup_epochs
        self._epoch = 0

    def rate(self, epoch: int, batch: int = 0) -> float:
        steps = self.steps_per_epoch
        return learning_rate_at(epoch * steps + batch, self.peak, self.epochs * steps, self.warmup_epochs * steps)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(self._epoch, batch)
