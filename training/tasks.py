"""The task registry: each of the study's six classifiers (and the demo) is one `TaskConfig`.

A task is data (`training.task_config.TaskConfig`): dataset, architecture and its options, input
size, optimiser, schedule, batch, epochs. Presets are small overrides applied with
`with_overrides`, listing only what differs:

* ``seed``: the study's own settings (where the study did not report one, the value is ours and
  is marked "not reported" below);
* ``recommended``: our settings, chosen to do clearly better (batch norm, augmentation, a
  cosine learning-rate schedule with warm-up, label smoothing, Xception's input scaling inside
  the model, cached base features for frozen bases, ``precision="auto"`` for the networks trained
  from scratch: bfloat16 where this machine trains it at least 1.15x as fast as float32, which
  it did for task1's CNN here, 1.4-2.1x on AMX; see docs/training.md);
* ``smoke``: ``recommended`` on a few hundred images for one short epoch, for tests.

`resolve(task, preset, **overrides)` returns the final, validated config.
"""

from __future__ import annotations

from typing import Any

from training.model_options import Average, Dense, Dropout, Flatten, LeakyReLU
from training.task_config import TaskConfig, with_overrides

PRESETS = ("seed", "recommended", "smoke")

XCEPTION_STUDY_NOTE = (
    "The study fed unscaled pixels to Xception and never applied its input preprocessing; "
    "every preset here scales pixels inside the model (Rescaling to [-1, 1]), as Xception expects."
)

# The recommended recipe for networks trained from scratch (task1, task3): AdamW with weight
# decay, cosine decay after a one-epoch warm-up, label smoothing, flip + translation augmentation,
# in the precision that trains fastest here (training.precision).
# Their exports build the int8 variant: on this machine it kept top-1 within 0.3 points at 2.6-3x
# the float model's speed for task1 and task3 (docs/training.md, "The int8 variant").
_FROM_SCRATCH = dict(
    optimizer="adamw",
    weight_decay=5e-4,
    schedule="cosine",
    warmup_epochs=1,
    batch_size=128,
    epochs=30,
    label_smoothing=0.1,
    augment=True,
    int8=True,
    precision="auto",
)

# What the from-scratch recipe regularises with once a run plans twice its reference epochs
# (training.regularization): CutMix on half the batches and an AdamW decay that acts. task3 and
# task2 (its final fit) use it, each measured at 2 hours (docs/results.md); task1 not yet.
_LONG_SCHEDULE = dict(cutmix=0.5, weight_decay=0.05)

# The recommended recipe for a frozen pretrained base (task4, task5): its features cached once, the
# head trained with Adam on a cosine schedule and label smoothing.
_FROZEN_BASE = dict(bottleneck=True, optimizer="adam", learning_rate=1e-3, schedule="cosine", batch_size=128, epochs=30, label_smoothing=0.1)

# Smoke runs export float only: on 100 validation images one flipped answer is a whole point. They
# train in float32: timing two precisions on 200 images would take longer than the run itself.
_SMOKE_CAPS = dict(epochs=1, max_train_images=200, max_validation_images=100, batch_size=32, warmup_epochs=0, int8=False, precision="float32")

TASKS: dict[str, TaskConfig] = {}
PRESET_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {}


def _register(config: TaskConfig, seed: dict, recommended: dict, smoke: dict) -> None:
    TASKS[config.name] = config
    PRESET_OVERRIDES[config.name] = {
        "seed": seed,
        "recommended": recommended,
        "smoke": {**recommended, **_SMOKE_CAPS, **smoke},
    }


_register(
    TaskConfig(
        name="demo",
        title="Demo: small CNN on scikit-learn's bundled digits (no download)",
        export_name="digits-cnn",
        dataset="digits",
        architecture="cnn",
        input_size=(32, 32),
        model=dict(filters=(32, 64), dense=(128,), batch_norm="all", dropout=0.25, dropout_after=(2,), batch_norm_momentum=0.9),
        optimizer="adam",
        learning_rate=2e-3,
        batch_size=64,
        epochs=12,
        augment=False,
    ),
    seed={},
    recommended={},
    smoke=dict(max_train_images=300),
)

_register(
    TaskConfig(
        name="task1",
        title="Custom 18-layer CNN on Tiny ImageNet 32x32",
        export_name="tinyimagenet-cnn",
        dataset="tiny-imagenet",
        architecture="cnn",
        input_size=(32, 32),
        model=dict(
            filters=(32, 32, 64, 64, 64),
            dense=(2048, 1024, 1024, 512, 512),
            batch_norm="study",
            dropout=0.2,
            dropout_after=(5,),
        ),
        optimizer="adam",
        learning_rate=1e-5,
        batch_size=64,
        epochs=200,
    ),
    seed={},
    # Three blocks of two 3x3 convolutions with batch norm, then flatten (4x4x128) into one dense
    # layer of 1024 with batch norm: at 30 minutes on the 250-per-class set it beat the global
    # average pooling head it replaced (docs/results.md).
    recommended=dict(
        model=dict(
            filters=(32, 64, 128),
            convs_per_block=2,
            dense=(1024,),
            dense_batch_norm=True,
            batch_norm="all",
            dropout=0.3,
            dropout_after=(),
            head="flatten",
            head_dropout=0.3,
            batch_norm_momentum=0.9,
        ),
        **_FROM_SCRATCH,
        learning_rate=2e-3,
    ),
    smoke={},
)

_register(
    TaskConfig(
        name="task2",
        title="AutoKeras ImageClassifier search on Tiny ImageNet 32x32",
        export_name="tinyimagenet-autokeras",
        dataset="tiny-imagenet",
        architecture="autokeras",
        input_size=(32, 32),
        batch_size=32,
        epochs=10,  # Epochs per trial: not reported by the study.
        max_trials=100,  # Not reported; the wall-clock budget is what bounded the study's search.
        time_budget_hours=10.0,
        notes="The study ran budgets of 1, 9, 10 and 15 hours; 10 h gave its best result (46.8%).",
    ),
    seed={},
    # Search task 1's CNN family (its first trial is task 1's recommended network, and the rest are
    # wider or deeper, see training/models/autokeras_space.py) with trials of equal time, each
    # annealed, then train the best on with task 1's recipe: the search chooses the architecture,
    # the final fit gets most of the time. A fifth of a long budget searches (a 2-hour run: 6
    # trials, one for each network of the space, of about 230 s each), the rest is the final fit's;
    # the 30% default left it about two thirds of task 1's own epochs at 2 hours.
    recommended=dict(
        model=dict(search_space="cnn"),
        **_FROM_SCRATCH,
        learning_rate=2e-3,
        equal_time_trials=True,
        max_trials=6,
        search_share=0.2,
        time_budget_hours=1.0,
        final_fit=True,
        # The final fit's regularisation grows with its planned epochs, as task3's does: at 2 hours
        # on the full set, 51.6% top-1 in 75 epochs with it, 48.7% in 60 without (stalled within a
        # point of 49% over the last 14). The trials are too short to reach it. task1's preset keeps
        # its own values until a 2-hour run measures its network with them (docs/results.md).
        long_schedule=_LONG_SCHEDULE,
    ),
    smoke=dict(trial_epochs=1, max_trials=1, time_budget_hours=0.1),
)

_register(
    TaskConfig(
        name="task3",
        title="AlexNet on Tiny ImageNet 32x32 (optionally 224x224)",
        export_name="tinyimagenet-alexnet",
        dataset="tiny-imagenet",
        architecture="alexnet",
        input_size=(32, 32),
        model=dict(first_stride=4, batch_norm=False, dense=(4096, 4096), dropout=0.5),
        optimizer="adam",
        learning_rate=1e-4,
        batch_size=64,
        epochs=30,  # Not reported by the study.
    ),
    seed={},
    recommended=dict(
        # At 32x32 a stride-1 3x3 stem at half the widths keeps 4x the resolution for the same
        # compute as a stride-2 5x5 one; batch norm in the dense layers and dropout 0.25 let the
        # dense head learn in a short run (10-minute runs on the 250-per-class set: 11.1% top-1
        # before, 25.7% after; see docs/results.md).
        model=dict(
            first_stride=1,
            first_kernel=3,
            filters=(48, 128, 192, 192, 128),
            batch_norm=True,
            dense=(1024, 1024),
            dense_batch_norm=True,
            dropout=0.25,
            batch_norm_momentum=0.9,
        ),
        **_FROM_SCRATCH,
        learning_rate=1e-3,
        # AlexNet overfits in long runs (2 hours on the full set: 76% training accuracy against
        # 48% validation): from twice reference_epochs on, CutMix on half the batches and an
        # AdamW decay that acts (training.regularization; docs/results.md, "task3 at 2 hours").
        long_schedule=_LONG_SCHEDULE,
    ),
    smoke={},
)

_register(
    TaskConfig(
        name="task4",
        title="Xception (ImageNet weights) frozen base + dense head on Tiny ImageNet 71x71",
        export_name="tinyimagenet-xception",
        dataset="tiny-imagenet",
        architecture="xception",
        input_size=(71, 71),
        model=dict(head=(Flatten(), Dense(512, "relu"), Dropout(0.3))),
        weights="imagenet",
        optimizer="sgd",
        learning_rate=1e-4,
        batch_size=32,  # Not reported by the study.
        epochs=50,  # Not reported by the study.
        notes=XCEPTION_STUDY_NOTE,
    ),
    seed={},
    recommended=dict(
        model=dict(head=(Average(), Dropout(0.3), Dense(512, "relu"), Dropout(0.3))),
        **_FROZEN_BASE,
    ),
    smoke=dict(weights="none"),
)

_register(
    TaskConfig(
        name="task5",
        title="Xception (ImageNet weights) transfer learning on CIFAR-10 71x71",
        export_name="cifar10-xception-transfer",
        dataset="cifar10",
        architecture="xception",
        input_size=(71, 71),
        model=dict(head=(Flatten(), Dropout(0.3), Dense(512), LeakyReLU(0.1), Dense(512, "relu"))),
        weights="imagenet",
        optimizer="sgd",
        learning_rate=1e-4,
        batch_size=32,
        epochs=150,
        notes=XCEPTION_STUDY_NOTE,
    ),
    seed={},
    recommended=dict(
        model=dict(head=(Average(), Dropout(0.3), Dense(512), LeakyReLU(0.1), Dropout(0.3))),
        **_FROZEN_BASE,
    ),
    smoke=dict(weights="none"),
)

_register(
    TaskConfig(
        name="task6",
        title="Fine-tuning the task5 model: unfreeze the top Xception blocks",
        export_name="cifar10-xception-finetuned",
        dataset="cifar10",
        architecture="xception",
        input_size=(71, 71),
        # The model (base and head) comes from the task5 run it starts from.
        init_from="task5",
        # Not reported by the study: the exit flow (blocks 13-14) at a low rate, as keras-io's recipe.
        unfreeze_from_block=13,
        optimizer="sgd",
        learning_rate=1e-5,
        momentum=0.9,
        batch_size=32,
        epochs=20,
        notes=XCEPTION_STUDY_NOTE,
    ),
    seed={},
    recommended=dict(
        unfreeze_from_block=11,
        optimizer="adam",
        learning_rate=2e-5,
        schedule="cosine",
        batch_size=64,
        epochs=10,
        augment=True,
        label_smoothing=0.1,
    ),
    smoke={},
)

DEFAULT_TASK = "demo"


def resolve(task: str, preset: str = "recommended", **overrides: Any) -> TaskConfig:
    """The config of ``task`` under ``preset``, with CLI ``overrides`` (None values ignored)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    config = with_overrides(TASKS[task], **PRESET_OVERRIDES[task][preset])
    return with_overrides(config, **{k: v for k, v in overrides.items() if v is not None})
