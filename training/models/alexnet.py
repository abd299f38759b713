"""AlexNet (task 3): five convolutions (96 11x11 stride 4, 256 5x5, 384 3x3, 384 3x3, 256 3x3)
with 3x3 stride-2 max-pooling after the first, second and fifth, then dense 4096, 4096 and a
softmax. Pooling uses 'same' padding so the network also runs at 32x32 (and at 224x224).
"""

from __future__ import annotations

import keras
from keras import layers

from training.models.blocks import dense_layers
from training.models.io import classifier_output, pixel_input

FILTERS = (96, 256, 384, 384, 256)
KERNELS = (11, 5, 3, 3, 3)
POOL_AFTER = (1, 2, 5)


def build(
    config,
    num_classes: int,
    first_stride: int = 4,
    first_kernel: int = 11,
    filters=FILTERS,
    batch_norm: bool = False,
    dense=(4096, 4096),
    dropout: float = 0.5,
    batch_norm_momentum: float = 0.99,
    dense_batch_norm: bool = False,
) -> keras.Model:
    """Builds AlexNet; ``first_stride``/``first_kernel`` adapt the stem to small inputs, ``filters``
    (five widths) the network's width; ``dense_batch_norm`` normalises the dense layers too."""
    if len(filters) != len(FILTERS):
        raise ValueError(f"AlexNet has {len(FILTERS)} convolutions: filters needs {len(FILTERS)} widths, got {tuple(filters)}")
    inputs = pixel_input(config)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    kernels = (first_kernel,) + KERNELS[1:]
    for index, (width, kernel) in enumerate(zip(filters, kernels), start=1):
        stride = first_stride if index == 1 else 1
        x = layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=batch_norm_momentum)(x)
        x = layers.ReLU()(x)
        if index in POOL_AFTER:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = dense_layers(x, dense, dense_batch_norm, dropout, batch_norm_momentum)
    return keras.Model(inputs, classifier_output(x, num_classes), name=f"{config.name}_alexnet")
