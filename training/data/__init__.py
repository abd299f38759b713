"""Dataset loaders: one module per source, all returning an `ImageDataset`.

`load_dataset(source, ...)` picks the loader for a task's dataset name:

* ``tiny-imagenet``: Tiny ImageNet 200 in its official zip or folder layout (`tiny_imagenet`);
* ``cifar10``: the official CIFAR-10 python archive or folder (`cifar10`);
* ``folder``: a plain ``root/<class>/*.jpg`` tree of the user's own images (`image_folder`);
* ``digits``: scikit-learn's bundled 8x8 digits, the demo data that needs no download (`digits`).
"""

from __future__ import annotations

from pathlib import Path

from training.data.base import DatasetError, ImageDataset, Limits, Skipped, Split

SOURCES = ("tiny-imagenet", "cifar10", "folder", "digits")


def load_dataset(
    source: str,
    data_dir: str | Path | None,
    image_size: tuple[int, int],
    limits: Limits = Limits(),
) -> ImageDataset:
    """Loads ``source`` from ``data_dir`` with every image resized to ``image_size``."""
    if source == "digits":
        from training.data import digits

        return digits.load(image_size, limits)
    if data_dir is None:
        raise DatasetError(f"the {source} dataset needs --data-dir (a folder holding it in its official form)")
    if source == "tiny-imagenet":
        from training.data import tiny_imagenet

        return tiny_imagenet.load(data_dir, image_size, limits)
    if source == "cifar10":
        from training.data import cifar10

        return cifar10.load(data_dir, image_size, limits)
    if source == "folder":
        from training.data import image_folder

        return image_folder.load(data_dir, image_size, limits)
    raise DatasetError(f"unknown dataset source {source!r}; known: {', '.join(SOURCES)}")


def check_layout(source: str, data_dir: str | Path | None) -> None:
    """Raises the `DatasetError` that `load_dataset` would for a missing or malformed dataset, from
    its listing and text files alone: seconds before TensorFlow is imported, not after."""
    if source == "digits":
        return
    if data_dir is None:
        raise DatasetError(f"the {source} dataset needs --data-dir (a folder holding it in its official form)")
    if source == "tiny-imagenet":
        from training.data import tiny_imagenet as module
    elif source == "cifar10":
        from training.data import cifar10 as module
    elif source == "folder":
        from training.data import image_folder as module
    else:
        raise DatasetError(f"unknown dataset source {source!r}; known: {', '.join(SOURCES)}")
    module.check(data_dir)


def class_ids(source: str, data_dir: str | Path | None) -> tuple[str, ...]:
    """The class ids ``load_dataset`` would give, from the dataset's listing and small text files."""
    if source == "digits":
        return tuple(str(i) for i in range(10))
    check_layout(source, data_dir)
    if source == "tiny-imagenet":
        from training.data import tiny_imagenet

        return tuple(tiny_imagenet._index(data_dir).class_ids)
    if source == "cifar10":
        from training.data import cifar10

        return cifar10.class_ids(data_dir)
    from training.data import image_folder

    return tuple(image_folder._layout(data_dir)[3])


__all__ = ["DatasetError", "ImageDataset", "Limits", "SOURCES", "Skipped", "Split", "check_layout", "class_ids", "load_dataset"]
