"""Typed answers: what the service returns, as objects rather than raw dicts."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Classification:
    class_index: int
    label: str  # The dataset's class id (a WordNet id for Tiny ImageNet).
    name: str  # The readable name.
    score: float


@dataclasses.dataclass(frozen=True)
class ClassifyResult:
    """The top classes of every image, best first, and the model and version that answered."""

    model: str
    version: int
    predictions: list[list[Classification]]
    # With feedback on the server: the id `feedback(request_id=...)` may name instead of an image.
    request_id: str | None = None

    @property
    def top(self) -> list[Classification]:
        """The best class of each image."""
        return [classes[0] for classes in self.predictions]

    def __len__(self) -> int:
        return len(self.predictions)

    def __iter__(self):
        return iter(self.predictions)

    def __getitem__(self, index: int) -> list[Classification]:
        return self.predictions[index]


@dataclasses.dataclass(frozen=True)
class PredictResult:
    """Class probabilities ``[images, classes]`` in the model's output order."""

    model: str
    version: int
    probabilities: np.ndarray


@dataclasses.dataclass(frozen=True)
class ExplainResult:
    """Which parts of the model's input one class depends on (the server occludes each cell of a
    grid over the input in turn and measures the class's drop)."""

    model: str
    version: int
    explained: Classification  # The class explained, and its score on the whole image.
    heatmap: np.ndarray  # [rows, cols] non-negative, summing to 1, over the model's input.
    informative: bool  # False when no cell lowered the score: the heatmap is then uniform.
    method: dict  # name, grid, cell_pixels, occluder, score, forward_passes.


@dataclasses.dataclass(frozen=True)
class FeedbackResult:
    """Where the server stored a corrected image, and what the model had answered for it."""

    model: str
    version: int
    label: str  # The correct class id that was sent.
    predicted: str  # The model's answer.
    score: float
    stored: str  # <label>/<sha256>.<ext> under the server's feedback folder.
    sha256: str
    duplicate: bool  # It was already stored under this label.


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int  # The latest (or the asked-for) version.
    versions: list[int]
    input_size: tuple[int, int]  # (height, width) the server resizes to.
    num_classes: int
    labels: list[str]
    names: list[str]
    task: str
    dataset: str
    runtime: str
    preprocessing: dict[str, str]
    metrics: dict[str, float]
    default: bool = False


@dataclasses.dataclass(frozen=True)
class Health:
    live: bool
    ready: bool
