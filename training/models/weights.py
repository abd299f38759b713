"""Errors about pretrained weights (kept apart from the builders so the CLI can name them without Keras)."""


class WeightsError(RuntimeError):
    """Pretrained weights could not be found or loaded."""
