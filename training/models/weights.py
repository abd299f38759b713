"""Errors about pretrained weights (kept apart from the builders so the CLI can name them without Keras)."""

from __future__ import annotations

from pathlib import Path


class WeightsError(RuntimeError):
    """Pretrained weights could not be found or loaded."""


def weights_file_error(path: Path) -> WeightsError:
    return WeightsError(
        f"weights file not found: {path}. Pass --weights PATH to an existing Xception 'notop' .h5 file, "
        "or --weights imagenet to let Keras download the ImageNet weights."
    )
