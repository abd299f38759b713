"""Model builders: raw pixels in, probabilities out, normalisation inside, study shapes kept."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training import model_options as options  # noqa: E402
from training import tasks  # noqa: E402
from training.interface.contract import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from training.models import build_model, xception  # noqa: E402


@pytest.mark.parametrize(
    "task,preset",
    [("demo", "recommended"), ("task1", "seed"), ("task1", "recommended"), ("task3", "seed"), ("task3", "recommended"), ("task5", "smoke")],
)
def test_models_take_raw_pixels_and_return_probabilities(task, preset):
    config = tasks.resolve(task, preset, weights="none") if task == "task5" else tasks.resolve(task, preset)
    model = build_model(config, 7)
    assert [tensor.name for tensor in model.inputs] == [INPUT_NAME]
    assert model.input.shape[1:] == (*config.input_size, 3)
    assert model.layers[1].__class__.__name__ == "Rescaling"  # normalisation is the first thing the model does
    pixels = np.random.default_rng(0).uniform(0, 255, (3, *config.input_size, 3)).astype(np.float32)
    probabilities = np.asarray(model(pixels, training=False))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model.layers[-1].name == OUTPUT_NAME


def test_study_cnn_has_the_studys_layers():
    model = build_model(tasks.resolve("task1", "seed"), 200)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 5 and kinds.count("MaxPooling2D") == 5
    assert kinds.count("BatchNormalization") == 1 and kinds.count("Dropout") == 1
    assert [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"] == [2048, 1024, 1024, 512, 512, 200]


def test_recommended_cnn_normalises_its_dense_layer():
    model = build_model(tasks.resolve("task1", "recommended"), 200)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 6 and kinds.count("BatchNormalization") == 7
    head = kinds[kinds.index("Flatten") :]
    assert head == ["Flatten", "Dropout", "Dense", "BatchNormalization", "ReLU", "Dropout", "Dense"]
    hidden = model.layers[kinds.index("Flatten") + 2]
    assert hidden.units == 1024 and not hidden.use_bias  # the batch norm's offset replaces the bias


def test_alexnet_has_five_convolutions_and_runs_at_224():
    config = tasks.resolve("task3", "seed", input_size=(224, 224))
    model = build_model(config, 200)
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convolutions] == [96, 256, 384, 384, 256]
    assert convolutions[0].kernel_size == (11, 11) and convolutions[0].strides == (4, 4)


def test_xception_scales_pixels_to_plus_minus_one_and_freezes_the_base():
    model = build_model(tasks.resolve("task4", "smoke"), 5)
    scale = model.get_layer("xception_preprocess")
    out = np.asarray(scale(np.array([[[[0.0, 127.5, 255.0]]]], np.float32)))
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)
    assert not model.get_layer(xception.BASE_NAME).trainable


def test_bottleneck_split_shares_the_heads_weights():
    model = build_model(tasks.resolve("task5", "smoke"), 10)
    features, head = xception.split_for_bottleneck(model)
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 71, 71, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(head(features(pixels))), np.asarray(model(pixels)), atol=1e-5)
    head.layers[-1].kernel.assign(np.zeros(head.layers[-1].kernel.shape, np.float32))
    np.testing.assert_allclose(np.asarray(model.layers[-1].kernel), 0.0)


def test_unfreeze_top_blocks_keeps_batch_norm_frozen():
    model = build_model(tasks.resolve("task5", "smoke"), 10)
    before = len(model.trainable_weights)
    xception.unfreeze_top(model, 13)
    base = model.get_layer(xception.BASE_NAME)
    trainable = [layer.name for layer in base.layers if layer.trainable and layer.weights]
    assert trainable and all(name.startswith(("block13", "block14")) for name in trainable)
    assert not any("_bn" in name for name in trainable)
    assert len(model.trainable_weights) > before


def test_xception_input_too_small_is_refused():
    with pytest.raises(ValueError, match="at least 71x71"):
        build_model(tasks.resolve("task5", "smoke", input_size=(32, 32)), 10)


@pytest.mark.parametrize(
    "task,model,message",
    [
        ("task1", {"widht": 3}, r"task task1: cnn has no option widht; options: filters, convs_per_block"),
        ("task1", {"dropout": "0.5"}, r"cnn option dropout must be float, got '0.5'"),
        ("task1", {"filters": (32, "64")}, r"cnn option filters\[1\] must be int, got '64'"),
        ("task1", {"batch_norm": "some"}, r"cnn option batch_norm must be one of 'study', 'all', 'none', got 'some'"),
        ("task3", {"dense_batch_norm": 1}, r"alexnet option dense_batch_norm must be bool, got 1"),
        ("task4", {"head": ("dense:512",)}, r"xception option head\[0\] must be Flatten or Average or Dropout or Dense"),
        ("task2", {"search_spaces": "cnn"}, r"autokeras has no option search_spaces"),
    ],
)
def test_a_misspelt_or_wrong_typed_model_option_is_refused_by_name(task, model, message):
    with pytest.raises(ValueError, match=message):
        tasks.with_overrides(tasks.resolve(task, "seed"), model=model)


def test_typed_heads_build_their_layers():
    head = (options.Flatten(), options.Dropout(0.3), options.Dense(8, "relu"), options.LeakyReLU(0.1), options.BatchNorm(), options.Average())
    kinds = [type(layer).__name__ for layer in xception.head_layers(head, 3)]
    assert kinds == ["Flatten", "Dropout", "Dense", "LeakyReLU", "BatchNormalization", "GlobalAveragePooling2D", "Dense"]
    assert tasks.resolve("task4", "recommended").to_json()["model"]["head"][2] == {"layer": "dense", "units": 512, "activation": "relu"}


def test_weights_errors_name_both_options(tmp_path):
    with pytest.raises(xception.WeightsError, match=r"--weights imagenet"):
        xception.base_model((71, 71), str(tmp_path / "missing.h5"))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(xception.WeightsError, match="cannot load Xception weights"):
        xception.base_model((71, 71), str(bad))


def test_alexnet_widths_must_be_five():
    config = tasks.with_overrides(tasks.resolve("task3", "recommended"), model={"filters": (64, 128, 256)})
    with pytest.raises(ValueError, match=r"AlexNet has 5 convolutions: filters needs 5 widths, got \(64, 128, 256\)"):
        build_model(config, 3)


@pytest.mark.parametrize(
    "setting,message",
    [
        (dict(trial_epochs=0), "trial_epochs must be at least 1"),
        (dict(search_share=1.0), "search_share must be between 0 and 1"),
        (dict(search_share=0), "search_share must be between 0 and 1"),
    ],
)
def test_bad_search_settings_are_named(setting, message):
    with pytest.raises(ValueError, match=message):
        tasks.resolve("task2", "recommended", **setting)


def test_a_final_fit_needs_a_search():
    with pytest.raises(ValueError, match="final_fit follows an AutoKeras search"):
        tasks.resolve("task1", "recommended", final_fit=True)
