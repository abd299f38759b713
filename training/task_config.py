"""What a task is: `TaskConfig` (dataset, architecture and its typed options, input size, optimiser,
schedule, batch, epochs, budgets), checked when it is made, and `with_overrides`, which applies
changes by name and type. The tasks themselves and their presets are `training.tasks`."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from training import model_options as options
from training import regularization
from training.data import SOURCES

ARCHITECTURES = ("cnn", "alexnet", "xception", "autokeras")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")
# float32, bfloat16 (Keras' mixed_bfloat16), or auto: timed on this machine (training.precision).
PRECISIONS = ("auto", "float32", "bfloat16")
WEIGHTS = ("imagenet", "none")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    name: str
    title: str
    # The exported model's name (TF Serving folder, BentoML tag, service route).
    export_name: str
    dataset: str
    architecture: str
    input_size: tuple[int, int]
    # The architecture's options (training.model_options): given as a mapping of what differs from
    # its defaults, held as its typed, checked dataclass.
    model: options.ModelOptions | dict = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: int = 0
    batch_size: int = 64
    epochs: int = 10
    label_smoothing: float = 0.0
    augment: bool = False
    # CutMix on top of the augmentation, per image with this probability (training.pipeline).
    cutmix: float = 0.0
    # Regularisation that grows with the planned schedule (training.regularization): the values of
    # these settings (cutmix, weight_decay, label_smoothing) from a plan of 2x ``reference_epochs``
    # on; up to ``reference_epochs`` the settings above hold, in between they are interpolated.
    long_schedule: dict = dataclasses.field(default_factory=dict)
    reference_epochs: int = 20
    # float32, bfloat16 (Keras' mixed_bfloat16) or auto: chosen by timing both (training.precision).
    precision: str = "float32"
    # Pretrained bases (Xception): "imagenet" (downloaded by Keras), "none" (random), or a path.
    weights: str | None = None
    # Frozen base: compute its features once, cache them, train only the head on them.
    bottleneck: bool = False
    # Fine-tuning: start from this task's trained model and unfreeze the base from this block on.
    init_from: str | None = None
    unfreeze_from_block: int | None = None
    # AutoKeras search budget.
    max_trials: int | None = None
    time_budget_hours: float | None = None
    # AutoKeras: epochs per trial (None: ``epochs``); with ``final_fit``, the best trial's model is
    # trained on for ``epochs`` with the task's own recipe (optimizer, schedule, augmentation), and
    # a --time-budget gives the search ``search_share`` of the time and the final fit the rest.
    trial_epochs: int | None = None
    # AutoKeras: with a search time, every trial trains for an equal share of it (search seconds /
    # max_trials) and ``trial_epochs`` only caps it: trials compare at equal time, not equal epochs,
    # so a slower, wider network must earn its place in the time the final fit will have too.
    equal_time_trials: bool = False
    final_fit: bool = False
    search_share: float = 0.3
    # The export also builds the int8 ONNX variant (training.export.quantize; --int8 / --no-int8 override).
    int8: bool = False
    # Caps on data (the smoke preset uses them); None reads everything.
    max_train_images: int | None = None
    max_validation_images: int | None = None
    seed: int = 1337
    notes: str = ""

    def __post_init__(self):
        checks = [
            (self.dataset in SOURCES, f"dataset must be one of {SOURCES}, got {self.dataset!r}"),
            (self.architecture in ARCHITECTURES, f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (len(self.input_size) == 2 and min(self.input_size) >= 8, f"input_size must be (height, width) >= 8, got {self.input_size}"),
            (self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (
                0 <= self.warmup_epochs < max(self.epochs, 1) or self.warmup_epochs == 0,
                f"warmup_epochs must be below epochs, got {self.warmup_epochs}",
            ),
            (not (self.bottleneck and self.augment), "bottleneck features cannot be combined with augmentation"),
            (0 <= self.cutmix <= 1, f"cutmix is a probability between 0 and 1, got {self.cutmix}"),
            (not (self.bottleneck and self.cutmix), "bottleneck features cannot be combined with CutMix"),
            (not self.bottleneck or self.architecture == "xception", "bottleneck features need a pretrained base (xception)"),
            (self.trial_epochs is None or self.trial_epochs >= 1, f"trial_epochs must be at least 1, got {self.trial_epochs}"),
            (0 < self.search_share < 1, f"search_share must be between 0 and 1, got {self.search_share}"),
            (not self.final_fit or self.architecture == "autokeras", "final_fit follows an AutoKeras search (architecture autokeras)"),
            *regularization.check(self.long_schedule, self.reference_epochs),
            (
                "weight_decay" not in self.long_schedule or self.optimizer == "adamw",
                f"long_schedule weight_decay needs optimizer adamw (the only one here that decays weights), got {self.optimizer!r}",
            ),
            (not (self.bottleneck and self.long_schedule.get("cutmix")), "bottleneck features cannot be combined with CutMix"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"task {self.name}: {message}")
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        try:
            object.__setattr__(self, "model", options.parse(self.architecture, self.model))
        except ValueError as error:
            raise ValueError(f"task {self.name}: {error}") from None

    def to_json(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["model"] = options.to_json(self.model)
        data["input_size"] = list(self.input_size)
        return data


def with_overrides(config: TaskConfig, **overrides: Any) -> TaskConfig:
    """Returns ``config`` with ``overrides`` applied; names and types are checked, ``model`` is merged."""
    fields = {f.name: f for f in dataclasses.fields(TaskConfig)}
    hints = typing.get_type_hints(TaskConfig)
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"unknown task setting {key!r}; known: {', '.join(sorted(fields))}")
        if key in ("model", "input_size") or value is None:
            continue
        expected = hints[key]
        allowed = tuple(t for t in typing.get_args(expected) if isinstance(t, type)) or (expected,)
        if float in allowed:
            allowed += (int,)
        if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
            raise ValueError(f"setting {key} expects {expected}, got {value!r}")
    if "model" in overrides and overrides.get("architecture", config.architecture) == config.architecture:
        overrides["model"] = options.merge(config.model, overrides["model"])
    return dataclasses.replace(config, **overrides)


def parse_settings(assignments: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` assignments as overrides for `with_overrides`: each VALUE is read as JSON
    (``0.5``, ``true``, ``{"cutmix": 0.5}``), else as text; ``model.KEY`` sets one model option."""
    settings: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {assignment!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key.startswith("model."):
            settings.setdefault("model", {})[key.removeprefix("model.")] = value
        else:
            settings[key] = value
    return settings
