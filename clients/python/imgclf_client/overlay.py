"""Draws an explanation's heatmap over the image it explains (what `imgclf explain --out` writes)."""

from __future__ import annotations

import io

import numpy as np

# The most a cell's colour covers the image (for the hottest cell); colder cells cover less.
STRENGTH = 0.6
HOT = np.array([255, 32, 0], np.float32)


def overlay(image: bytes, heatmap: np.ndarray):
    """A PIL image: ``image`` (encoded bytes) in RGB with ``heatmap`` stretched over all of it (the
    server resizes the whole image to the model's input, so the grid covers the whole image),
    each pixel tinted towards red by its heat between the map's coldest and hottest cells."""
    from PIL import Image, ImageOps

    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(image))).convert("RGB")
    heat = np.asarray(heatmap, np.float32)
    low, high = (float(heat.min()), float(heat.max())) if heat.size else (0.0, 0.0)
    # The coldest cell untinted, the hottest at full strength; a uniform map tints nothing.
    scaled = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    # Upsample the grid with a bilinear filter (named: PIL's default here would be bicubic).
    mask = Image.fromarray(np.uint8(np.round(scaled * 255)), "L").resize(picture.size, Image.Resampling.BILINEAR)
    alpha = STRENGTH * np.asarray(mask, np.float32)[..., np.newaxis] / 255
    pixels = np.asarray(picture, np.float32)
    return Image.fromarray(np.uint8(np.round((1 - alpha) * pixels + alpha * HOT)), "RGB")
