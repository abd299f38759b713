"""A frozen base (tasks 4 and 5): the full model split at its base, and the base's features
computed once and cached in the run, so that only the head trains."""

from __future__ import annotations

import logging
import time

import keras
import numpy as np

from training.evaluation import EVALUATION_BATCH
from training.initial_model import initial_model
from training.models import xception
from training.run_dir import RunDirectory, save_model_atomic

log = logging.getLogger("training")


def split(config, dataset, run: RunDirectory, init_run: str | None) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(full model, features model, head). The full model is saved at the run's start, so that a
    resumed run rebuilds the same base."""
    full_start = run / "checkpoint" / "full_start.keras"
    if full_start.is_file():
        full = keras.models.load_model(full_start)
    else:
        full = initial_model(config, dataset, init_run)
        save_model_atomic(full, full_start)
    features_model, head = xception.split_for_bottleneck(full)
    return full, features_model, head


def cached(run: RunDirectory, name: str, features: keras.Model, images: np.ndarray) -> np.ndarray:
    """The frozen base's features for ``images``, computed once and cached (float16) in the run."""
    path = run / "features" / f"{name}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    shape = (len(images), *features.output.shape[1:])
    temporary = path.with_name(f".{name}.tmp.npy")
    cache = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
    for begin in range(0, len(images), EVALUATION_BATCH):
        batch = images[begin : begin + EVALUATION_BATCH].astype(np.float32)
        cache[begin : begin + len(batch)] = features.predict_on_batch(batch).astype(np.float16)
    cache.flush()
    del cache
    temporary.replace(path)
    seconds = time.perf_counter() - start
    log.info("cached %s features of %d images in %.1f s (%.0f images/s)", name, len(images), seconds, len(images) / max(seconds, 1e-9))
    return np.load(path, mmap_mode="r")
