"""Export building blocks: model names, the in-graph decode + resize, the parity rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from training import tasks
from training.export import ExportError, check_name, default_name, parity
from training.interface.preprocessing import decode_image, load_image


@pytest.mark.parametrize("name", ["tinyimagenet-cnn", "a", "model.v2", "x_1", "9" * 63])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Upper", "a/b", "../up", "a b", "-a", "a-", "a:1", "é", "x" * 64])
def test_invalid_names_are_refused_with_the_rule(name):
    with pytest.raises(ExportError, match="is not valid: use 1-63 lowercase letters"):
        check_name(name)


def test_every_task_has_a_distinct_valid_export_name():
    names = [config.export_name for config in tasks.TASKS.values()]
    assert len(set(names)) == len(names)
    assert tasks.TASKS["task1"].export_name == "tinyimagenet-cnn"
    assert tasks.TASKS["task6"].export_name == "cifar10-xception-finetuned"
    for name in names:
        check_name(name)


def test_default_name_follows_the_data_when_the_dataset_is_overridden():
    config = tasks.resolve("task5", "smoke").to_json()
    assert default_name({"task": config}) == "cifar10-xception-transfer"
    own = {**config, "dataset": "folder"}
    assert default_name({"task": own, "data_dir": "/data/My Flowers!"}) == "my-flowers-xception-transfer"


def _encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "source,target", [((64, 64), (32, 32)), ((375, 500), (71, 71)), ((32, 32), (71, 71)), ((33, 47), (32, 32)), ((71, 71), (71, 71))]
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_in_graph_decode_and_resize_matches_the_shared_path(source, target, fmt):
    import tensorflow as tf

    from training.export.saved_model import decode_and_resize

    rng = np.random.default_rng(sum(source) + len(fmt))
    coarse = rng.integers(0, 256, (max(2, source[0] // 6), max(2, source[1] // 6), 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize(source[::-1], Image.Resampling.BILINEAR))
    data = _encoded(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    in_graph = decode_and_resize(tf.constant(data), target).numpy()
    shared = load_image(data, target).astype(np.float32)
    assert in_graph.shape == shared.shape == (*target, 3)
    # The contract: within one grey level (float vs fixed-point rounding); most pixels equal.
    assert np.abs(in_graph - shared).max() <= 1.0
    assert np.abs(in_graph - shared).mean() < 0.3


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_in_graph_decode_converts_colour_modes_like_the_shared_path(mode):
    import tensorflow as tf

    from training.export.saved_model import decode_and_resize

    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).convert(mode)
    data = _encoded(np.asarray(picture), "PNG") if mode != "P" else _png_palette(picture)
    in_graph = decode_and_resize(tf.constant(data), (20, 30)).numpy()
    np.testing.assert_array_equal(in_graph, decode_image(data).astype(np.float32))


def _png_palette(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_encode_variants_cover_formats_and_sizes_in_both_directions():
    pixels = parity.random_samples((32, 32), count=12)
    encoded, formats = parity.encode_variants(pixels)
    assert len(encoded) == 12 and {f.split()[0] for f in formats} >= {"jpeg", "png", "bmp", "gif", "png-l", "png-rgba"}
    sizes = [decode_image(data).shape[:2] for data in encoded]
    assert any(h > 32 for h, _ in sizes) and any(h < 32 for h, _ in sizes) and (32, 32) in sizes


def test_parity_rules_tolerate_ties_but_not_real_disagreements():
    keras = np.array([[0.7, 0.2, 0.1], [0.40000, 0.39998, 0.20002]], np.float32)
    tied = keras.copy()
    tied[1] = [0.39999, 0.40000, 0.20001]  # Top-1 flips inside a tie: allowed, and reported.
    result = parity.check_onnx_against_keras(keras, tied)
    assert result["top1_disagreements"] == 0 and result["top1_ties"] == 1
    with pytest.raises(parity.ParityError, match="max \\|difference\\| 0.5"):
        parity.check_onnx_against_keras(keras, keras[:, [1, 0, 2]])
    with pytest.raises(parity.ParityError, match="limit 0.0001"):
        parity.check_onnx_against_keras(keras, keras + np.float32(2e-4))
