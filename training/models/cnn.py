"""Plain convolutional networks: the study's 18-layer custom CNN (task 1) and its variants.

The study's network (the defaults): five blocks of one 3x3 'same' convolution + 2x2 max-pool
with 32, 32, 64, 64, 64 filters, batch norm after the third block, dropout 0.2 after the fifth,
flatten, dense 2048, 1024, 1024, 512, 512 and a softmax.
"""

from __future__ import annotations

import keras
from keras import layers

from training.model_options import CnnOptions
from training.models.batch_norm import BatchNormalization
from training.models.blocks import dense_layers
from training.models.io import classifier_output, pixel_input


def build(config, num_classes: int) -> keras.Model:
    """Builds the CNN of ``config.model`` (`CnnOptions`)."""
    inputs = pixel_input(config)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = features(x, config.model)
    return keras.Model(inputs, classifier_output(x, num_classes), name=f"{config.name}_cnn")


def features(x, options: CnnOptions):
    """The convolutional blocks, the head's reduction to a vector and the dense layers (`build`'s
    body, which task2's search space builds too): ``x`` is the rescaled image tensor."""
    momentum = options.batch_norm_momentum
    for block, width in enumerate(options.filters, start=1):
        for _ in range(options.convs_per_block):
            if options.batch_norm == "all":
                x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
                x = BatchNormalization(momentum=momentum)(x)
                x = layers.ReLU()(x)
            else:
                x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        if options.batch_norm == "study" and block == 3:
            x = BatchNormalization(momentum=momentum)(x)
        if block in options.dropout_after:
            x = layers.Dropout(options.dropout)(x)
    x = layers.Flatten()(x) if options.head == "flatten" else layers.GlobalAveragePooling2D()(x)
    if options.head_dropout:
        x = layers.Dropout(options.head_dropout)(x)
    return dense_layers(x, options.dense, options.dense_batch_norm, options.head_dropout, momentum)
