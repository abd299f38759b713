"""Regularisation that grows with the planned schedule: a task's ``long_schedule`` settings, reached
by the time the plan holds twice its ``reference_epochs``.

A recipe tuned where a short run peaks overfits in a long one: task1's network, planned for 21
epochs of the full Tiny ImageNet, ended with training and validation accuracy two points apart,
and planned for 93 it gained half a point of validation accuracy in its last 40 epochs while its
training accuracy rose six (docs/results.md). So the regularisation a run trains with is a function
of the epochs it plans, decided once the plan is known (a budgeted run's probe, or ``epochs``):

* up to ``reference_epochs`` the preset's own values hold;
* from twice ``reference_epochs`` on, the ``long_schedule`` values hold;
* in between each setting moves from one to the other by log2(epochs / reference_epochs).

The levers are the ones that can change after the model is built: CutMix's probability, the weight
decay and the label smoothing. A resumed run re-plans from its saved plan, so it keeps the values
it started with. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

LEVERS = ("cutmix", "weight_decay", "label_smoothing")


@dataclasses.dataclass(frozen=True)
class Scaled:
    """What a schedule of ``epochs`` trains with: the strength (0: the preset's values, 1: the
    long-schedule values) and each lever's value."""

    epochs: int
    reference_epochs: int
    strength: float
    values: dict

    def to_json(self) -> dict:
        return {
            "epochs": self.epochs,
            "reference_epochs": self.reference_epochs,
            "strength": round(self.strength, 3),
            **{name: round(value, 6) for name, value in self.values.items()},
        }


def check(long_schedule: dict, reference_epochs: int) -> list[tuple[bool, str]]:
    """The checks `TaskConfig` runs on its ``long_schedule`` and ``reference_epochs``."""
    unknown = sorted(set(long_schedule) - set(LEVERS))
    checks = [
        (not unknown, f"long_schedule settings must be among {', '.join(LEVERS)}, got {', '.join(unknown)}"),
        (reference_epochs >= 1, f"reference_epochs must be at least 1, got {reference_epochs}"),
    ]
    for name, value in long_schedule.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        checks.append((number and value >= 0, f"long_schedule {name} must be a number >= 0, got {value!r}"))
    if isinstance(long_schedule.get("cutmix"), (int, float)):
        checks.append((long_schedule["cutmix"] <= 1, f"long_schedule cutmix is a probability between 0 and 1, got {long_schedule['cutmix']}"))
    if isinstance(long_schedule.get("label_smoothing"), (int, float)):
        value = long_schedule["label_smoothing"]
        checks.append((value < 1, f"long_schedule label_smoothing must be below 1, got {value}"))
    return checks


def strength(epochs: int, reference_epochs: int) -> float:
    """0 up to ``reference_epochs``, 1 from twice that, log2(epochs / reference_epochs) in between."""
    if epochs <= reference_epochs:
        return 0.0
    return min(1.0, math.log2(epochs / reference_epochs))


def for_schedule(config, epochs: int) -> Scaled | None:
    """The regularisation a run of ``config`` planned for ``epochs`` trains with (None: the task has
    no ``long_schedule``, its own values hold)."""
    if not config.long_schedule:
        return None
    share = strength(epochs, config.reference_epochs)
    values = {name: getattr(config, name) + (target - getattr(config, name)) * share for name, target in config.long_schedule.items()}
    return Scaled(epochs, config.reference_epochs, share, values)
