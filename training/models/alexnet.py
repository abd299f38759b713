"""AlexNet (task 3): five convolutions (96 11x11 stride 4, 256 5x5, 384 3x3, 384 3x3, 256 3x3)
with 3x3 stride-2 max-pooling after the first, second and fifth, then dense 4096, 4096 and a
softmax. Pooling uses 'same' padding so the network also runs at 32x32 (and at 224x224).
"""

from __future__ import annotations

import keras
from keras import layers

from training.models.batch_norm import BatchNormalization
from training.models.blocks import dense_layers
from training.models.io import classifier_output, pixel_input

KERNELS = (11, 5, 3, 3, 3)
POOL_AFTER = (1, 2, 5)


def build(config, num_classes: int) -> keras.Model:
    """Builds the AlexNet of ``config.model`` (`AlexNetOptions`): ``first_stride``/``first_kernel``
    adapt the stem to small inputs, ``filters`` (five widths) the network's width;
    ``dense_batch_norm`` normalises the dense layers too."""
    options = config.model
    if len(options.filters) != len(KERNELS):
        raise ValueError(f"AlexNet has {len(KERNELS)} convolutions: filters needs {len(KERNELS)} widths, got {options.filters}")
    inputs = pixel_input(config)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    kernels = (options.first_kernel,) + KERNELS[1:]
    for index, (width, kernel) in enumerate(zip(options.filters, kernels), start=1):
        stride = options.first_stride if index == 1 else 1
        x = layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=not options.batch_norm)(x)
        if options.batch_norm:
            x = BatchNormalization(momentum=options.batch_norm_momentum)(x)
        x = layers.ReLU()(x)
        if index in POOL_AFTER:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = dense_layers(x, options.dense, options.dense_batch_norm, options.dropout, options.batch_norm_momentum)
    return keras.Model(inputs, classifier_output(x, num_classes), name=f"{config.name}_alexnet")
