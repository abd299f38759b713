"""The training input pipeline's augmentations, on images whose every pixel says which image it
came from: translation and flip keep each image's own pixels; CutMix pastes one box from one
other image and mixes the labels by exactly the pasted area."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training import pipeline

COUNT, SIZE, CLASSES = 16, 8, 16


def _marked_images() -> np.ndarray:
    """Image i is filled with the value 10 * i (class i)."""
    return np.repeat(np.arange(COUNT, dtype=np.float32)[:, None, None, None] * 10, SIZE * SIZE * 3).reshape(COUNT, SIZE, SIZE, 3)


def test_cutmix_pastes_one_box_from_one_other_image_and_mixes_labels_by_its_area():
    tf.random.set_seed(0)
    images, labels = tf.constant(_marked_images()), tf.one_hot(tf.range(COUNT), CLASSES)
    mixed, soft = pipeline.cutmix_batch(images, labels, probability=1.0)
    mixed, soft = mixed.numpy(), soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    pasted_any = False
    for index in range(COUNT):
        values = np.unique(mixed[index])
        assert len(values) <= 2  # Its own pixels and one partner's at most.
        others = values[values != 10 * index]
        pasted = float((mixed[index, ..., 0] != 10 * index).mean())
        assert np.isclose(soft[index, index], 1 - pasted, atol=1e-6)
        if len(others):
            pasted_any = True
            partner = int(others[0] // 10)
            assert np.isclose(soft[index, partner], pasted)
            rows, cols = np.nonzero(mixed[index, ..., 0] != 10 * index)  # The pasted pixels form one box.
            assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert pasted_any


def test_cutmix_at_probability_zero_changes_nothing():
    images, labels = tf.constant(_marked_images()), tf.one_hot(tf.range(COUNT), CLASSES)
    mixed, soft = pipeline.cutmix_batch(images, labels, probability=0.0)
    np.testing.assert_array_equal(mixed.numpy(), images.numpy())
    np.testing.assert_array_equal(soft.numpy(), labels.numpy())


def test_the_training_dataset_applies_cutmix_after_flip_and_translation():
    images = _marked_images().astype(np.uint8)
    data = pipeline.training_dataset(images, np.arange(COUNT), CLASSES, COUNT, augment=True, seed=1, cutmix=1.0)
    batch_images, batch_labels = next(iter(data))
    assert batch_images.dtype == tf.float32 and batch_labels.shape == (COUNT, CLASSES)
    assert (batch_labels.numpy().max(axis=1) < 1).any()  # Some labels mixed.
    plain = pipeline.training_dataset(images, np.arange(COUNT), CLASSES, COUNT, augment=True, seed=1)
    plain_images, plain_labels = next(iter(plain))
    assert set(plain_labels.numpy().max(axis=1)) == {1.0}  # Flip and translation alone mix nothing...
    for image, label in zip(plain_images.numpy(), plain_labels.numpy(), strict=True):
        assert set(np.unique(image)) == {10 * int(label.argmax())}  # ...and move only each image's own pixels.
