"""`tf.distribute` strategies: the same training script runs on one device, several GPUs
(``mirrored``) or several machines (``multi-worker``, configured by the TF_CONFIG variable).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi-worker needs the TF_CONFIG environment variable (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


def worker_index() -> int:
    """This process's index among the workers (0 for single-process training)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    if task.get("type") == "chief":
        return 0
    cluster = config.get("cluster") or {}
    return int(task.get("index", 0)) + (1 if cluster.get("chief") else 0)


def is_chief() -> bool:
    """Whether this process writes the run's outputs (the others write to scratch folders)."""
    return worker_index() == 0
