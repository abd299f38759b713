"""Batch normalisation on TensorFlow's fused kernel: Keras' layer, the same weights and config,
computed by one FusedBatchNormV3 op (oneDNN's, in bfloat16 too) instead of a dozen element-wise ops.

Keras 3's `keras.layers.BatchNormalization` computes its moments and normalisation op by op, and
under mixed precision casts every activation to float32 and back. On this machine's 2-core CPU
that was most of a bfloat16 training step: task1's CNN trained at 850 images/s with it and 2,361
without any batch norm; with this layer, 1,635 (task3's AlexNet: 703 and 1,192; see
docs/training.md). A run's saved model holds Keras' own layer again (`stock_copy`), so exports and
anything that loads ``model.keras`` need nothing of ours; checkpoints hold this one (registered as
``imgclf>BatchNormalization``; `training.fit` imports this module before resuming). Its outputs
and running statistics match Keras' layer (tests/unit/test_batch_norm.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="imgclf", name="BatchNormalization")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` over the last axis of 2-D or 4-D inputs, fused. Anything
    else (another axis, a mask, synchronised statistics) is left to Keras' own implementation."""

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if mask is not None or self.synchronized or rank not in (2, 4) or self.axis % rank != rank - 1:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = inputs if rank == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        # The kernel takes bfloat16 or float16 activations with float32 statistics and parameters.
        if x.dtype not in (tf.float32, tf.bfloat16, tf.float16):
            x = tf.cast(x, tf.float32)
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels], tf.float32)
        offset = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels], tf.float32)
        mean, variance = tf.convert_to_tensor(self.moving_mean), tf.convert_to_tensor(self.moving_variance)
        learning = bool(training) and self.trainable
        y, new_mean, new_variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            scale,
            offset,
            mean=mean,
            variance=variance,
            epsilon=self.epsilon,
            is_training=learning,
            exponential_avg_factor=1.0 - self.momentum if learning else 1.0,
        )
        if learning:
            # The kernel folds in the unbiased batch variance (n/(n-1)); Keras the biased one: undone here.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            kept = self.momentum * variance
            self.moving_mean.assign(new_mean)
            self.moving_variance.assign(kept + (new_variance - kept) * (count - 1.0) / tf.maximum(count, 1.0))
        y = y if rank == 4 else tf.reshape(y, tf.shape(inputs))
        return tf.cast(y, self.compute_dtype)
