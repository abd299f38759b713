"""CIFAR-10 from its official python archive (``cifar-10-python.tar.gz``) or extracted folder.

The batches are pickles. They are read with `SafeUnpickler`, which admits only plain
containers, bytes, numbers and numpy arrays, so a crafted batch file cannot run code. Both
numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) pickles are accepted.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from training.data.base import DatasetError, ImageDataset, Limits, Split, per_class_cap, resize_all, take_per_class

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"

# The only globals a CIFAR batch needs: numpy's array reconstruction and the codec Python 3
# uses for bytes in protocol 2. Anything else (os.system, builtins.eval...) is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside `_ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch may hold only plain data and numpy arrays")
        return super().find_class(module, name)


def load_batch(data: bytes, description: str) -> dict:
    """Unpickles one batch safely; keys come back as str."""
    try:
        raw = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DatasetError(f"{description} is not a valid CIFAR-10 batch: {error}") from error
    if not isinstance(raw, dict):
        raise DatasetError(f"{description} is not a valid CIFAR-10 batch: expected a dict, got {type(raw).__name__}")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}


def _batch_arrays(batch: dict, description: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int32)
    except KeyError as error:
        raise DatasetError(f"{description} has no {error.args[0]!r} entry") from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DatasetError(f"{description} has data of shape {data.shape} for {len(labels)} labels; expected (N, 3072)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{description} has labels outside 0-9")
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _reader(data_dir: Path):
    """Returns (read(name) -> bytes, describe(name) -> str) for the archive or the folder."""
    archive = data_dir if data_dir.is_file() else data_dir / ARCHIVE_NAME
    if archive.is_file():
        try:
            tar = tarfile.open(archive, "r:*")
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DatasetError(f"{archive} is not a readable tar archive: {error}") from error

        def read(name: str) -> bytes:
            member = members.get(f"{FOLDER_NAME}/{name}")
            if member is None:
                raise DatasetError(f"{archive} has no member {FOLDER_NAME}/{name}")
            try:
                return tar.extractfile(member).read()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DatasetError(f"cannot read {archive}:{FOLDER_NAME}/{name}: {error}") from error

        return read, lambda name: f"{archive}:{FOLDER_NAME}/{name}"
    for folder in (data_dir, data_dir / FOLDER_NAME):
        if (folder / META).is_file() or (folder / TEST_BATCH).is_file():

            def read(name: str, folder=folder) -> bytes:
                path = folder / name
                if not path.is_file():
                    raise DatasetError(f"CIFAR-10 file missing: {path}")
                return path.read_bytes()

            return read, lambda name, folder=folder: str(folder / name)
    if not data_dir.exists():
        raise DatasetError(f"data directory does not exist: {data_dir}")
    raise DatasetError(f"no CIFAR-10 found in {data_dir}: expected {ARCHIVE_NAME} or {FOLDER_NAME}/ there")


def check(data_dir: str | Path) -> None:
    """Raises the `DatasetError` that `load` would for a missing archive or folder, without reading
    the batches (an archive is only listed)."""
    _reader(Path(data_dir))


def _names(read, describe) -> list[str]:
    meta = load_batch(read(META), describe(META))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    if len(names) != 10:
        raise DatasetError(f"{describe(META)} should list 10 label_names, found {len(names)}")
    return names


def class_ids(data_dir: str | Path) -> tuple[str, ...]:
    """The class ids (label names) from the metadata batch alone."""
    return tuple(_names(*_reader(Path(data_dir))))


def load(data_dir: str | Path, image_size: tuple[int, int], limits: Limits = Limits()) -> ImageDataset:
    read, describe = _reader(Path(data_dir))
    names = _names(read, describe)

    def split(batch_names, limit) -> Split:
        images, labels = [], []
        for name in batch_names:
            batch_images, batch_labels = _batch_arrays(load_batch(read(name), describe(name)), describe(name))
            images.append(batch_images)
            labels.append(batch_labels)
        all_images, all_labels = np.concatenate(images), np.concatenate(labels)
        pick = take_per_class(all_labels, all_labels.tolist(), per_class_cap(limit, len(names)))
        return Split(resize_all(all_images[pick], image_size), all_labels[pick])

    return ImageDataset(
        name="cifar-10",
        train=split(TRAIN_BATCHES, limits.max_train_images),
        validation=split((TEST_BATCH,), limits.max_validation_images),
        class_ids=tuple(names),
        class_names=tuple(names),
    )
