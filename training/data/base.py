"""The dataset description every loader returns, and helpers the loaders share."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from training.interface import preprocessing

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset folder or archive is missing or malformed; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An input file left out of a dataset, and why."""

    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: uint8 images (N, height, width, 3) at the model's input size and int32 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"split images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """What every loader returns: both splits, class ids, readable names and what was skipped.

    ``class_ids[i]`` is the stable id of class ``i`` (a WordNet id, a CIFAR name, a folder name);
    ``class_names[i]`` is its human-readable name. ``problems`` lists non-fatal findings such as
    a class with no images.
    """

    name: str
    train: Split
    validation: Split
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    skipped: tuple[Skipped, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Caps on how many images a loader reads (the smoke preset uses these); None = all."""

    max_train_images: int | None = None
    max_validation_images: int | None = None


def files_under(folder: Path) -> list[Path]:
    """Every file anywhere under ``folder``, sorted, following symbolic links to folders (a dataset
    linked in from another disk is common); a link back to a folder already visited is not
    followed again, so a link cycle ends."""
    found, visited = [], set()
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in visited:
            subdirectories.clear()
            continue
        visited.add(real)
        found.extend(Path(directory) / name for name in files if os.path.isfile(os.path.join(directory, name)))
    return sorted(found)


def per_class_cap(limit: int | None, num_classes: int) -> int | None:
    """How many images of each class to take so that about ``limit`` are taken in all."""
    if limit is None:
        return None
    return max(1, limit // max(1, num_classes))


def take_per_class(items: Sequence, labels: Sequence[int], cap: int | None) -> list[int]:
    """Indices of at most ``cap`` items of each label, in their original order."""
    if cap is None:
        return list(range(len(items)))
    counts: dict[int, int] = {}
    chosen = []
    for index, label in enumerate(labels):
        if counts.get(label, 0) < cap:
            counts[label] = counts.get(label, 0) + 1
            chosen.append(index)
    return chosen


def decode_files(
    entries: Iterable[tuple[str, int]],
    read_bytes: Callable[[str], bytes],
    image_size: tuple[int, int],
    skipped: list[Skipped],
    describe: Callable[[str], str] = str,
) -> Split:
    """Decodes and resizes each (path, label); unreadable images are skipped and recorded."""
    images, labels = [], []
    for path, label in entries:
        try:
            images.append(preprocessing.load_image(read_bytes(path), image_size))
            labels.append(label)
        except (preprocessing.InvalidImageError, OSError) as error:
            log.warning("skipping %s: %s", describe(path), error)
            skipped.append(Skipped(describe(path), str(error)))
    return make_split(images, labels, image_size)


def make_split(images: list[np.ndarray], labels: list[int], image_size: tuple[int, int]) -> Split:
    if images:
        array = np.stack(images).astype(np.uint8, copy=False)
    else:
        array = np.zeros((0, *image_size, 3), np.uint8)
    return Split(array, np.asarray(labels, dtype=np.int32))


def resize_all(images: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Resizes a uint8 (N, H, W, 3) array with the project's one resize function."""
    if images.shape[1:3] == tuple(image_size):
        return np.ascontiguousarray(images, dtype=np.uint8)
    out = np.empty((len(images), *image_size, 3), np.uint8)
    for index, image in enumerate(images):
        out[index] = preprocessing.resize_bilinear(image, image_size)
    return out


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices into (train, validation), taking ``fraction`` of each class for validation."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(len(members) * fraction)) if len(members) > 1 else 0
        validation.extend(members[:count])
        train.extend(members[count:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(validation, dtype=np.int64))
