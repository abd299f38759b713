"""Plain convolutional networks: the study's 18-layer custom CNN (task 1) and its variants.

The study's network (the defaults): five blocks of one 3x3 'same' convolution + 2x2 max-pool
with 32, 32, 64, 64, 64 filters, batch norm after the third block, dropout 0.2 after the fifth,
flatten, dense 2048, 1024, 1024, 512, 512 and a softmax.
"""

from __future__ import annotations

import keras
from keras import layers

from training.models.blocks import dense_layers
from training.models.io import classifier_output, pixel_input


def build(
    config,
    num_classes: int,
    filters=(32, 32, 64, 64, 64),
    convs_per_block: int = 1,
    batch_norm: str = "study",
    dropout: float = 0.2,
    dropout_after=(5,),
    dense=(2048, 1024, 1024, 512, 512),
    head: str = "flatten",
    head_dropout: float = 0.0,
    batch_norm_momentum: float = 0.99,
    dense_batch_norm: bool = False,
) -> keras.Model:
    """Builds the CNN.

    Args:
        batch_norm: "study" (after the third block only, as the study), "all" (after every
            convolution, before its ReLU) or "none".
        dropout_after: 1-based block numbers followed by ``dropout``.
        head: "flatten" (the study) or "average" (global average pooling).
        head_dropout: dropout after the head's reduction and after each dense layer.
        dense_batch_norm: batch norm in the dense layers too (before their ReLU).
        batch_norm_momentum: Keras' default 0.99 averages the batch statistics over ~100 steps;
            runs of a few hundred steps need a shorter memory (0.9) or inference lags training.
    """
    inputs = pixel_input(config)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = features(x, filters, convs_per_block, batch_norm, dropout, dropout_after, head, head_dropout, batch_norm_momentum, dense, dense_batch_norm)
    return keras.Model(inputs, classifier_output(x, num_classes), name=f"{config.name}_cnn")


def features(
    x,
    filters,
    convs_per_block: int = 1,
    batch_norm: str = "study",
    dropout: float = 0.2,
    dropout_after=(5,),
    head: str = "flatten",
    head_dropout: float = 0.0,
    batch_norm_momentum: float = 0.99,
    dense=(),
    dense_batch_norm: bool = False,
):
    """The convolutional blocks, the head's reduction to a vector and the dense layers (`build`'s
    body, which task2's search space builds too): ``x`` is the rescaled image tensor."""
    if batch_norm not in ("study", "all", "none"):
        raise ValueError(f"batch_norm must be 'study', 'all' or 'none', got {batch_norm!r}")
    if head not in ("flatten", "average"):
        raise ValueError(f"head must be 'flatten' or 'average', got {head!r}")
    for block, width in enumerate(filters, start=1):
        for _ in range(convs_per_block):
            if batch_norm == "all":
                x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
                x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
                x = layers.ReLU()(x)
            else:
                x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        if batch_norm == "study" and block == 3:
            x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
        if block in dropout_after:
            x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x) if head == "flatten" else layers.GlobalAveragePooling2D()(x)
    if head_dropout:
        x = layers.Dropout(head_dropout)(x)
    x = dense_layers(x, dense, dense_batch_norm, head_dropout, batch_norm_momentum)
    return x
