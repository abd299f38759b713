"""The fused batch norm layer against Keras' own, on the same weights and batches: the same outputs
in training and inference, the same running statistics, in float32 and bfloat16, 2-D and 4-D; it round-trips through a .keras file; and
the saved copy of a model holds Keras' own layer with the same predictions."""

from __future__ import annotations

import numpy as np
import pytest

from training import precision
from training.models.batch_norm import BatchNormalization


def _pair(shape, name):
    import keras

    with precision.policy(name):
        ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
        ours.build(shape), theirs.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, shape[-1]), rng.normal(0, 1, shape[-1]), rng.normal(0, 1, shape[-1]), rng.uniform(0.5, 2, shape[-1])]
    for layer in (ours, theirs):
        layer.set_weights([w.astype(np.float32) for w in weights])
    return ours, theirs


@pytest.mark.parametrize("shape", [(32, 6, 6, 8), (32, 16)])
@pytest.mark.parametrize("name,tolerance", [("float32", 1e-4), ("bfloat16", 5e-2)])
def test_it_computes_what_keras_batch_norm_computes(shape, name, tolerance):
    ours, theirs = _pair(shape, name)
    x = np.random.default_rng(1).normal(3, 2, shape).astype(np.float32)
    for training in (True, False):
        expected = np.asarray(theirs(x, training=training), np.float32)
        actual = np.asarray(ours(x, training=training), np.float32)
        assert ours(x).dtype.name == name
        np.testing.assert_allclose(actual, expected, atol=tolerance * 4, rtol=tolerance)
    (our_mean, our_variance), (their_mean, their_variance) = (layer.get_weights()[2:] for layer in (ours, theirs))
    np.testing.assert_allclose(our_mean, their_mean, atol=tolerance)
    # Running variance: momentum * old + (1 - momentum) * batch variance.
    np.testing.assert_allclose(our_variance, their_variance, atol=tolerance)
    import tensorflow as tf  # And it did run on the fused kernel.

    graph = tf.function(lambda t: ours(t, training=True)).get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}


def test_a_frozen_layer_uses_its_running_statistics_and_keeps_them():
    ours, theirs = _pair((16, 4, 4, 3), "float32")
    ours.trainable = theirs.trainable = False
    x = np.random.default_rng(2).normal(0, 1, (16, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True), atol=1e-5)
    np.testing.assert_array_equal(ours.get_weights()[2], theirs.get_weights()[2])


def test_a_model_with_it_round_trips_and_saves_as_keras_own(tmp_path):
    import keras

    with precision.policy("bfloat16"):
        inputs = keras.Input((8, 8, 3))
        x = BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
        x = keras.layers.Flatten()(x)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(BatchNormalization()(x)))
    pixels = np.random.default_rng(3).uniform(0, 255, (8, 8, 8, 3)).astype(np.float32)
    model.compile("adam", "categorical_crossentropy")
    model.fit(pixels, np.eye(3)[np.arange(8) % 3], epochs=1, verbose=0)
    model.save(tmp_path / "checkpoint.keras")
    loaded = keras.models.load_model(tmp_path / "checkpoint.keras")
    assert sum(isinstance(layer, BatchNormalization) for layer in loaded.layers) == 2
    for theirs, ours in zip(model.weights, loaded.weights, strict=True):  # Weights and running statistics alike.
        np.testing.assert_array_equal(np.asarray(theirs), np.asarray(ours))
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=1e-3)
    saved = precision.saved_copy(model)
    assert not any(isinstance(layer, BatchNormalization) for layer in saved.layers)
    assert sum(type(layer) is keras.layers.BatchNormalization for layer in saved.layers) == 2
    assert precision.of_model(saved) == "float32"
    for theirs, ours in zip(model.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(theirs, dtype=np.float32), np.asarray(ours))
    # bfloat16 keeps 8 bits of mantissa: the float32 copy answers alike, not bit for bit.
    np.testing.assert_allclose(saved.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=0.05)
    # A float32 model of ours is converted too; a float32 model of Keras' own is saved as it is.
    assert precision.saved_copy(saved) is saved
