"""The demo dataset: scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes).

It ships inside the scikit-learn wheel, so the demo trains with no download. The 0-16 grey
levels are scaled to 0-255, made RGB and resized with the project's bilinear resize.
"""

from __future__ import annotations

import numpy as np

from training.data.base import ImageDataset, Limits, Split, per_class_cap, resize_all, stratified_split, take_per_class

VALIDATION_FRACTION = 0.2
SPLIT_SEED = 1337
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def load(image_size: tuple[int, int], limits: Limits = Limits()) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=3)
    labels = bunch.target.astype(np.int32)
    train_index, validation_index = stratified_split(labels, VALIDATION_FRACTION, SPLIT_SEED)

    def split(index, limit) -> Split:
        pick = index[take_per_class(index, labels[index].tolist(), per_class_cap(limit, 10))]
        return Split(resize_all(rgb[pick], image_size), labels[pick])

    return ImageDataset(
        name="sklearn-digits",
        train=split(train_index, limits.max_train_images),
        validation=split(validation_index, limits.max_validation_images),
        class_ids=tuple(str(i) for i in range(10)),
        class_names=NAMES,
    )
