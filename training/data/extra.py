"""``train --extra-data DIR``: more labelled images for a task's training set, from an image folder
(``DIR/<class id>/*.jpg|png|...``, what the server's feedback writes). Every image goes to
training (the task's validation split is unchanged, so runs stay comparable); each folder's name
must be one of the task's class ids, and one that is not is refused by name before anything is
decoded. ``repeat`` puts each image that many times into the training set, so that a few dozen
corrections weigh against tens of thousands of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.base import DatasetError, ImageDataset, Split, decode_files, files_under
from training.data.image_folder import IMAGE_SUFFIXES, UNLABELLED


def check(folder: str | Path, class_ids: tuple[str, ...]) -> list[str]:
    """The class folders of ``folder``, each checked to be one of ``class_ids`` (nothing decoded)."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"--extra-data {root} does not exist or is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != UNLABELLED)
    if not classes:
        raise DatasetError(f"--extra-data {root} holds no class folders: expected {root}/<class id>/<image files>")
    unknown = [name for name in classes if name not in set(class_ids)]
    if unknown:
        shown = ", ".join(class_ids[:5]) + (", ..." if len(class_ids) > 5 else "")
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DatasetError(f"--extra-data {root}: folder {unknown[0]!r}{more} is not one of the task's {len(class_ids)} class ids ({shown})")
    return classes


def add(dataset: ImageDataset, folder: str | Path, image_size: tuple[int, int], repeat: int = 1) -> tuple[ImageDataset, dict]:
    """``dataset`` with ``folder``'s images added to its training split; and what was added."""
    if repeat < 1:
        raise DatasetError(f"--extra-repeat must be at least 1, got {repeat}")
    root = Path(folder)
    classes = check(root, dataset.class_ids)
    index = {class_id: label for label, class_id in enumerate(dataset.class_ids)}
    entries = [(str(path), index[name]) for name in classes for path in files_under(root / name) if path.suffix.lower() in IMAGE_SUFFIXES]
    skipped: list = []
    extra = decode_files(entries, lambda path: Path(path).read_bytes(), image_size, skipped)
    if len(extra) == 0:
        raise DatasetError(f"--extra-data {root}: no readable image in its class folders ({len(skipped)} skipped)")
    images = np.concatenate([dataset.train.images, *[extra.images] * repeat])
    labels = np.concatenate([dataset.train.labels, *[extra.labels] * repeat])
    added = {
        "folder": str(root),
        "images": len(extra),
        "repeat": repeat,
        "per_class": {dataset.class_ids[label]: int(count) for label, count in zip(*np.unique(extra.labels, return_counts=True))},
        "skipped": len(skipped),
    }
    merged = ImageDataset(
        name=dataset.name,
        train=Split(images, labels.astype(dataset.train.labels.dtype)),
        validation=dataset.validation,
        class_ids=dataset.class_ids,
        class_names=dataset.class_names,
        skipped=dataset.skipped + tuple(skipped),
        problems=dataset.problems,
    )
    return merged, added
