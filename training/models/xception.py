"""Xception transfer learning (tasks 4-6): a frozen Xception base under a new dense head.

Pixels are scaled to [-1, 1] inside the model (Xception's ``preprocess_input``), and the base
is called with ``training=False`` so its batch norm stays in inference mode even when top
blocks are unfrozen for fine-tuning (keras-io's transfer-learning recipe). The head is
declarative: a sequence of typed layers (`training.model_options`: ``Average()``, ``Flatten()``,
``Dropout(0.3)``, ``Dense(512, "relu")``, ``LeakyReLU(0.1)``, ``BatchNorm()``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
from keras import layers

from training import model_options as options
from training.interface.contract import INPUT_NAME, OUTPUT_NAME
from training.models.io import pixel_input
from training.models.weights import WeightsError, weights_file_error

log = logging.getLogger(__name__)

BASE_NAME = "xception"
MIN_INPUT = 71


def head_layers(head: tuple[options.HeadLayer, ...], num_classes: int) -> list[keras.layers.Layer]:
    """The head's layers, from its typed spec (`training.model_options`), ending in the softmax classifier."""
    made = []
    for item in head:
        if isinstance(item, options.Flatten):
            made.append(layers.Flatten())
        elif isinstance(item, options.Average):
            made.append(layers.GlobalAveragePooling2D())
        elif isinstance(item, options.Dropout):
            made.append(layers.Dropout(item.rate))
        elif isinstance(item, options.Dense):
            made.append(layers.Dense(item.units, activation=item.activation))
        elif isinstance(item, options.LeakyReLU):
            made.append(layers.LeakyReLU(negative_slope=item.slope))
        elif isinstance(item, options.BatchNorm):
            made.append(layers.BatchNormalization())
        else:
            raise ValueError(f"unknown head layer {item!r}")
    made.append(layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME))
    return made


def base_model(input_size, weights: str | None) -> keras.Model:
    """Xception without its top. ``weights``: "imagenet", "none"/None (random) or a local .h5 path."""
    height, width = input_size
    if min(height, width) < MIN_INPUT:
        raise ValueError(f"Xception needs inputs of at least {MIN_INPUT}x{MIN_INPUT}, got {height}x{width}")
    shape = (height, width, 3)
    if weights in (None, "none"):
        return keras.applications.Xception(include_top=False, weights=None, input_shape=shape, name=BASE_NAME)
    if weights == "imagenet":
        try:
            return keras.applications.Xception(include_top=False, weights="imagenet", input_shape=shape, name=BASE_NAME)
        except Exception as error:  # Keras raises several kinds when the download fails.
            raise WeightsError(
                f"could not get Xception's ImageNet weights ({type(error).__name__}: {error}). Either connect to "
                "the internet so Keras can download them, or pass --weights PATH with a local "
                "xception_weights_tf_dim_ordering_tf_kernels_notop.h5 file (or --weights none for random init)."
            ) from error
    path = Path(weights)
    if not path.is_file():
        raise weights_file_error(path)
    try:
        return keras.applications.Xception(include_top=False, weights=str(path), input_shape=shape, name=BASE_NAME)
    except Exception as error:
        raise WeightsError(f"cannot load Xception weights from {path}: {error}") from error


def build(config, num_classes: int, weights: str | None) -> keras.Model:
    """The full model: pixels -> scale to [-1, 1] -> frozen Xception -> head -> probabilities."""
    base = base_model(config.input_size, weights)
    base.trainable = False
    inputs = pixel_input(config)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="xception_preprocess")(inputs)
    x = base(x, training=False)
    for layer in head_layers(config.model.head, num_classes):
        x = layer(x)
    return keras.Model(inputs, x, name=f"{config.name}_xception")


def split_for_bottleneck(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Splits a built model into (features model, head model) sharing the same layer objects.

    Training the head model on cached features trains the full model's head weights.
    """
    base = model.get_layer(BASE_NAME)
    preprocess = model.get_layer("xception_preprocess")
    inputs = keras.Input(shape=model.input.shape[1:], name=INPUT_NAME)
    features = keras.Model(inputs, base(preprocess(inputs), training=False), name="features")
    head_input = keras.Input(shape=base.output.shape[1:], name="features")
    x = head_input
    for layer in model.layers[model.layers.index(base) + 1 :]:
        x = layer(x)
    return features, keras.Model(head_input, x, name="head")


def unfreeze_top(model: keras.Model, from_block: int) -> int:
    """Makes Xception blocks ``from_block``.. trainable (batch norm stays frozen); returns the count."""
    base = model.get_layer(BASE_NAME)
    base.trainable = True
    count = 0
    for layer in base.layers:
        name = layer.name
        block = int(name[5:].split("_")[0]) if name.startswith("block") and name[5:].split("_")[0].isdigit() else 0
        layer.trainable = block >= from_block and not isinstance(layer, layers.BatchNormalization)
        count += int(layer.trainable and bool(layer.weights))
    return count


__all__ = ["WeightsError", "base_model", "build", "head_layers", "split_for_bottleneck", "unfreeze_top"]
