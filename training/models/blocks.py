"""Layer stacks that more than one builder uses."""

from __future__ import annotations

from keras import layers

from training.models.batch_norm import BatchNormalization


def dense_layers(x, units, batch_norm: bool, dropout: float, batch_norm_momentum: float):
    """Dense ReLU layers, each followed by ``dropout`` if set; with ``batch_norm``, the batch
    norm sits between the layer (no bias: the norm's offset replaces it) and its ReLU."""
    for width in units:
        if batch_norm:
            x = layers.Dense(width, use_bias=False)(x)
            x = BatchNormalization(momentum=batch_norm_momentum)(x)
            x = layers.ReLU()(x)
        else:
            x = layers.Dense(width, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x
