"""tf.data input pipelines over in-memory splits: shuffle, batch, augment, prefetch.

Images arrive already decoded and resized (by `training.interface.preprocessing`, at load time), so the
pipeline only casts to float32 0-255 (models normalise inside) and augments whole batches with
vectorised ops: a random horizontal flip and a random translation (reflect-pad, then a
per-image random crop back to size), and optionally CutMix. Labels become one-hot so label
smoothing (and CutMix's mixed labels) work.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def _options() -> tf.data.Options:
    options = tf.data.Options()
    # Every worker holds the whole in-memory split; shard by element, not by file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def augment_batch(images: tf.Tensor, pad: int) -> tf.Tensor:
    """Random horizontal flip and translation by up to ``pad`` pixels, per image, vectorised."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    flip = tf.random.uniform([batch]) < 0.5
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if pad <= 0:
        return images
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    offset_y = tf.random.uniform([batch], 0, 2 * pad + 1, dtype=tf.int32)
    offset_x = tf.random.uniform([batch], 0, 2 * pad + 1, dtype=tf.int32)
    rows = offset_y[:, None] + tf.range(height)[None, :]
    cols = offset_x[:, None] + tf.range(width)[None, :]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def cutmix_batch(images: tf.Tensor, labels: tf.Tensor, probability: float) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix (Yun et al., 2019), per image with ``probability``: a box of a random area fraction
    (uniform in 0-1, as Beta(1, 1)) from another image of the batch is pasted in, and the
    one-hot labels are mixed by the pasted area."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    partner = tf.random.shuffle(tf.range(batch))
    area = tf.random.uniform([batch]) * tf.cast(tf.random.uniform([batch]) < probability, tf.float32)
    box_h = tf.cast(tf.round(tf.cast(height, tf.float32) * tf.sqrt(area)), tf.int32)
    box_w = tf.cast(tf.round(tf.cast(width, tf.float32) * tf.sqrt(area)), tf.int32)
    top = tf.cast(tf.random.uniform([batch]) * tf.cast(height - box_h + 1, tf.float32), tf.int32)
    left = tf.cast(tf.random.uniform([batch]) * tf.cast(width - box_w + 1, tf.float32), tf.int32)
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    images = tf.where(inside[..., None], tf.gather(images, partner), images)
    pasted = tf.cast(box_h * box_w, tf.float32) / tf.cast(height * width, tf.float32)
    labels = labels * (1.0 - pasted[:, None]) + tf.gather(labels, partner) * pasted[:, None]
    return images, labels


def translation_pad(image_size) -> int:
    """Translation range for augmentation: an eighth of the smaller side (4 px at 32x32)."""
    return max(1, min(image_size) // 8)


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    batch_size: int,
    augment: bool,
    seed: int,
    cutmix: float = 0.0,
) -> tf.data.Dataset:
    """Shuffled, batched (global batch), optionally augmented training data (flip and translation;
    CutMix with probability ``cutmix`` on top); repeats per epoch."""
    pad = translation_pad(images.shape[1:3])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=False)

    def prepare(batch_images, batch_labels):
        batch_images = tf.cast(batch_images, tf.float32)
        if augment:
            batch_images = augment_batch(batch_images, pad)
        one_hot = tf.one_hot(batch_labels, num_classes)
        if cutmix > 0:
            batch_images, one_hot = cutmix_batch(batch_images, one_hot, cutmix)
        return batch_images, one_hot

    return dataset.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE).with_options(_options())


def evaluation_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int) -> tf.data.Dataset:
    """Batched evaluation data in order, no augmentation."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, num_classes)), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE).with_options(_options())
