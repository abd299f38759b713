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
        _patch_keras_symbolic_build()
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


def _patch_keras_symbolic_build() -> None:
    """Shims for two bugs of Keras 3.12's TensorFlow trainer under MultiWorkerMirroredStrategy.

    1. Before the first step, `fit` reads one distributed batch only to learn its shapes, and
       reduces it with ``strategy.reduce("MEAN")``, which fails there ("Attempt to convert a
       value (PerReplica...) to a Tensor"). We take the local replica's batch instead: it has
       the shapes the symbolic build needs.
    2. Each step averages the workers' scalar logs with ``strategy.reduce("MEAN", v, axis=0)``,
       which fails on scalars ("Invalid reduction dimension 0"). We reduce them with
       ``axis=None`` (the mean across replicas), which is what was meant.

    Applied only when the multi-worker strategy is chosen; everything else in `fit` is unchanged.
    """
    from keras.src.backend.tensorflow import trainer as tensorflow_trainer

    trainer = tensorflow_trainer.TensorFlowTrainer
    if getattr(trainer, "_imgclf_patched", False):
        return
    original = trainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None:
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: (
                    self.distribute_strategy.experimental_local_results(value)[0] if isinstance(value, tf.distribute.DistributedValues) else value
                ),
                next(batches),
            )
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tensorflow_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tensorflow_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return original_reduce(values, strategy, reduction)

    trainer._maybe_symbolic_build = _maybe_symbolic_build
    tensorflow_trainer.reduce_per_replica = reduce_per_replica
    trainer._imgclf_patched = True
