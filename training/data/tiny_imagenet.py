"""Tiny ImageNet 200 in its official layout, from the zip or from the extracted folder.

Layout (under ``tiny-imagenet-200/``): ``wnids.txt`` (class ids), ``words.txt`` (readable names
for every ImageNet id), ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (file, wnid, box). Grayscale images become RGB. An image that no
class or annotation claims, an annotation whose file is missing, and a class with no images are
reported in the dataset's ``skipped`` / ``problems``, not fatal.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import zipfile
from pathlib import Path

from training.data.base import (
    DatasetError,
    ImageDataset,
    Limits,
    Skipped,
    decode_files,
    files_under,
    per_class_cap,
    take_per_class,
)

log = logging.getLogger(__name__)

ROOT_NAME = "tiny-imagenet-200"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


class _Tree:
    """Read-only access to the dataset's files, whether in a zip or a folder."""

    def __init__(self, location: Path):
        self.location = location
        self._zip = None
        if location.is_file():
            try:
                self._zip = zipfile.ZipFile(location)
            except zipfile.BadZipFile as error:
                raise DatasetError(f"{location} is not a readable zip archive: {error}") from error
            names = self._zip.namelist()
            roots = {name.split("/", 1)[0] for name in names if "/" in name}
            self._prefix = f"{ROOT_NAME}/" if ROOT_NAME in roots else ""
            self._names = {name[len(self._prefix) :] for name in names if name.startswith(self._prefix)}
        else:
            self._prefix = ""

    def describe(self, relative: str) -> str:
        return f"{self.location}:{self._prefix}{relative}" if self._zip else str(self.location / relative)

    def exists(self, relative: str) -> bool:
        if self._zip:
            return relative in self._names
        return (self.location / relative).is_file()

    def read(self, relative: str) -> bytes:
        if self._zip:
            return self._zip.read(self._prefix + relative)
        return (self.location / relative).read_bytes()

    def text(self, relative: str) -> str:
        if not self.exists(relative):
            raise DatasetError(f"Tiny ImageNet file missing: {self.describe(relative)}")
        return self.read(relative).decode("utf-8", errors="replace")

    def files_under(self, folder: str) -> list[str]:
        """Relative paths of the files anywhere under ``folder``, sorted."""
        folder = folder.rstrip("/") + "/"
        if self._zip:
            return sorted(n for n in self._names if n.startswith(folder) and not n.endswith("/"))
        base = self.location / folder
        if not base.is_dir():
            return []
        return sorted(posixpath.join(folder, p.relative_to(base).as_posix()) for p in files_under(base))


def locate(data_dir: str | Path) -> Path:
    """Finds the dataset: the zip, a folder holding the zip or ``tiny-imagenet-200/``, or that folder."""
    path = Path(data_dir)
    if not path.exists():
        raise DatasetError(f"data directory does not exist: {path}")
    if path.is_file():
        return path
    if (path / "wnids.txt").is_file():
        return path
    if (path / ROOT_NAME / "wnids.txt").is_file():
        return path / ROOT_NAME
    archives = sorted(path.glob(f"{ROOT_NAME}*.zip"))
    if archives:
        return archives[0]
    raise DatasetError(f"no Tiny ImageNet found in {path}: expected {ROOT_NAME}*.zip, {ROOT_NAME}/ or wnids.txt there")


def _read_words(tree: _Tree) -> dict[str, str]:
    words = {}
    if not tree.exists("words.txt"):
        return words
    for line in tree.text("words.txt").splitlines():
        wnid, _, name = line.partition("\t")
        if wnid.strip():
            words[wnid.strip()] = name.strip()
    return words


@dataclasses.dataclass
class _Index:
    """What the dataset holds, from its listing and text files alone (no image decoded)."""

    tree: _Tree
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    train_entries: list[tuple[str, int]]
    validation_entries: list[tuple[str, int]]
    skipped: list[Skipped]
    problems: list[str]


def _index(data_dir: str | Path) -> _Index:
    tree = _Tree(locate(data_dir))
    class_ids = tuple(sorted({line.strip() for line in tree.text("wnids.txt").splitlines() if line.strip()}))
    if not class_ids:
        raise DatasetError(f"{tree.describe('wnids.txt')} lists no class ids")
    index_of = {wnid: index for index, wnid in enumerate(class_ids)}
    words = _read_words(tree)
    class_names = tuple(words.get(wnid, wnid) for wnid in class_ids)
    skipped: list[Skipped] = []
    problems: list[str] = []

    train_entries = []
    for path in tree.files_under("train"):
        parts = path.split("/")
        if not path.lower().endswith(IMAGE_SUFFIXES):
            continue
        if len(parts) != 4 or parts[2] != "images":
            skipped.append(Skipped(tree.describe(path), "not in train/<wnid>/images/"))
            continue
        if parts[1] not in index_of:
            skipped.append(Skipped(tree.describe(path), f"class {parts[1]} is not in wnids.txt"))
            continue
        train_entries.append((path, index_of[parts[1]]))
    if not train_entries:
        raise DatasetError(f"no training images under {tree.describe('train/')}")
    counts = {label: 0 for label in range(len(class_ids))}
    for _, label in train_entries:
        counts[label] += 1
    empty = [class_ids[label] for label, count in counts.items() if count == 0]
    if empty:
        problems.append(f"{len(empty)} classes have no training images: {', '.join(empty[:10])}")

    annotations: dict[str, str] = {}
    for number, line in enumerate(tree.text("val/val_annotations.txt").splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            if line.strip():
                problems.append(f"val_annotations.txt line {number} is malformed: {line[:80]!r}")
            continue
        annotations[fields[0].strip()] = fields[1].strip()
    validation_entries = []
    present = set()
    for path in tree.files_under("val/images"):
        if not path.lower().endswith(IMAGE_SUFFIXES):
            continue
        name = posixpath.basename(path)
        present.add(name)
        wnid = annotations.get(name)
        if wnid is None:
            skipped.append(Skipped(tree.describe(path), "not listed in val/val_annotations.txt"))
        elif wnid not in index_of:
            skipped.append(Skipped(tree.describe(path), f"annotated with unknown class {wnid}"))
        else:
            validation_entries.append((path, index_of[wnid]))
    for name in sorted(set(annotations) - present):
        skipped.append(Skipped(tree.describe(f"val/images/{name}"), "listed in val_annotations.txt but missing"))

    return _Index(tree, class_ids, class_names, train_entries, validation_entries, skipped, problems)


def check(data_dir: str | Path) -> None:
    """Raises the `DatasetError` that `load` would for a dataset of the wrong layout, without decoding."""
    _index(data_dir)


def load(data_dir: str | Path, image_size: tuple[int, int], limits: Limits = Limits()) -> ImageDataset:
    index = _index(data_dir)
    tree, class_ids, class_names = index.tree, index.class_ids, index.class_names
    train_entries, validation_entries, skipped, problems = index.train_entries, index.validation_entries, index.skipped, index.problems
    train_pick = take_per_class(train_entries, [e[1] for e in train_entries], per_class_cap(limits.max_train_images, len(class_ids)))
    validation_pick = take_per_class(
        validation_entries, [e[1] for e in validation_entries], per_class_cap(limits.max_validation_images, len(class_ids))
    )
    train = decode_files((train_entries[i] for i in train_pick), tree.read, image_size, skipped, tree.describe)
    validation = decode_files((validation_entries[i] for i in validation_pick), tree.read, image_size, skipped, tree.describe)
    for message in problems:
        log.warning("%s", message)
    return ImageDataset(
        name="tiny-imagenet-200",
        train=train,
        validation=validation,
        class_ids=class_ids,
        class_names=class_names,
        skipped=tuple(skipped),
        problems=tuple(problems),
    )
