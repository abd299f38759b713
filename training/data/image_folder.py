"""A plain image folder of the user's own images: ``root/<class>/*.jpg|png|...``.

If ``root`` holds ``train/`` and ``val/`` (or ``validation/``) folders, each laid out by class,
those are the splits; otherwise a seeded, stratified 10% of each class is held out for
validation. Class ids are the folder names, sorted (hidden folders and ``_unlabelled`` are not
classes: a folder the server's feedback writes is a dataset as it stands). An optional ``root/labels.txt`` of
``<folder>\t<readable name>`` lines gives readable names. Unreadable images are skipped and
recorded, not fatal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.base import (
    DatasetError,
    ImageDataset,
    Limits,
    Skipped,
    Split,
    decode_files,
    files_under,
    per_class_cap,
    stratified_split,
    take_per_class,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 1337


# Not a class: the server's folder of low-confidence images awaiting a label (serving.core.feedback).
UNLABELLED = "_unlabelled"


def _classes(folder: Path) -> list[str]:
    """The class folders: every folder but hidden ones (a feedback folder's ``.tmp``) and `UNLABELLED`."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != UNLABELLED)


def _entries(folder: Path, class_ids: list[str]) -> list[tuple[str, int]]:
    entries = []
    for label, class_id in enumerate(class_ids):
        class_folder = folder / class_id
        if not class_folder.is_dir():
            continue
        for path in files_under(class_folder):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                entries.append((str(path), label))
    return entries


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _layout(data_dir: str | Path) -> tuple[Path, Path, Path | None, list[str], list[tuple[str, int]]]:
    """(root, training folder, validation folder or None, class ids, training files), or the
    `DatasetError` that names what is missing. Lists files; decodes nothing."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"image folder does not exist or is not a folder: {root}")
    validation_folder = next((root / n for n in ("val", "validation") if (root / n).is_dir()), None)
    train_folder = root / "train" if validation_folder and (root / "train").is_dir() else root
    class_ids = _classes(train_folder)
    if not class_ids:
        raise DatasetError(f"no class folders in {train_folder}: expected {train_folder}/<class>/<image files>")
    train_entries = _entries(train_folder, class_ids)
    if not train_entries:
        raise DatasetError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {train_folder}")
    return root, train_folder, validation_folder, class_ids, train_entries


def check(data_dir: str | Path) -> None:
    """Raises the `DatasetError` that `load` would for a folder of the wrong layout, without decoding."""
    _layout(data_dir)


def load(data_dir: str | Path, image_size: tuple[int, int], limits: Limits = Limits()) -> ImageDataset:
    root, train_folder, validation_folder, class_ids, train_entries = _layout(data_dir)
    problems: list[str] = []
    skipped: list[Skipped] = []
    empty = sorted(set(class_ids) - {class_ids[label] for _, label in train_entries})
    if empty:
        problems.append(f"{len(empty)} class folders hold no images: {', '.join(empty[:10])}")

    if validation_folder is not None:
        unknown = sorted(set(_classes(validation_folder)) - set(class_ids))
        if unknown:
            problems.append(f"validation classes not in training, ignored: {', '.join(unknown[:10])}")
        validation_entries = _entries(validation_folder, class_ids)
    else:
        labels = np.asarray([label for _, label in train_entries])
        train_index, validation_index = stratified_split(labels, VALIDATION_FRACTION, SPLIT_SEED)
        validation_entries = [train_entries[i] for i in validation_index]
        train_entries = [train_entries[i] for i in train_index]

    def decode(entries, limit) -> Split:
        pick = take_per_class(entries, [label for _, label in entries], per_class_cap(limit, len(class_ids)))
        return decode_files((entries[i] for i in pick), _read, image_size, skipped)

    train = decode(train_entries, limits.max_train_images)
    validation = decode(validation_entries, limits.max_validation_images)
    if len(train) == 0:
        raise DatasetError(f"none of the images under {train_folder} could be read ({len(skipped)} skipped)")
    names = dict.fromkeys(class_ids)
    labels_file = root / "labels.txt"
    if labels_file.is_file():
        for line in labels_file.read_text(encoding="utf-8").splitlines():
            key, _, name = line.partition("\t")
            if key in names and name.strip():
                names[key] = name.strip()
    return ImageDataset(
        name=root.name,
        train=train,
        validation=validation,
        class_ids=tuple(class_ids),
        class_names=tuple(names[c] or c for c in class_ids),
        skipped=tuple(skipped),
        problems=tuple(problems),
    )
