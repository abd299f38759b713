"""A model's class probabilities over many images, in fixed batches: what the run's final
evaluation, the cached features and the export's checks share (below training and export both)."""

from __future__ import annotations

import numpy as np

EVALUATION_BATCH = 256


def predict_probabilities(model, images: np.ndarray) -> np.ndarray:
    """``model``'s output for ``images`` (any numeric dtype, fed as float32), ``EVALUATION_BATCH`` at a time."""
    outputs = [
        np.asarray(model.predict_on_batch(images[i : i + EVALUATION_BATCH].astype(np.float32))) for i in range(0, len(images), EVALUATION_BATCH)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output.shape[-1]), np.float32)
