"""The overlay `imgclf explain --out` writes: the heatmap stretched over the whole image (the server
resizes the whole image to the model's input), tinting hot cells and leaving cold ones alone."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imgclf_client.overlay import overlay


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_hot_cell_is_tinted_and_the_cold_ones_are_not():
    image = np.full((40, 60, 3), 100, np.uint8)
    heatmap = np.zeros((4, 4))
    heatmap[0, 3] = 1  # The top-right cell: rows 0-9, columns 45-59 of the image.
    drawn = np.asarray(overlay(_png(image), heatmap)).astype(int)
    assert drawn.shape == image.shape
    assert drawn[2, 55, 0] > 180 and drawn[2, 55, 2] < 50  # Red at the hot cell (60% tint over grey 100).
    np.testing.assert_array_equal(drawn[30:, :30], image[30:, :30])  # Far from it: the image as it was.


def test_a_uniform_map_leaves_the_image_as_it_was():
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(overlay(_png(image), np.full((8, 8), 1 / 64))), image)
