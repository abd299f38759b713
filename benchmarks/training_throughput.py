"""Training throughput of each task's `recommended` preset on this machine, and the data pipeline's share.

For every task it trains the real model on real images (from $IMGCLF_DATA_DIR, capped) and
measures images/s two ways, alternating them to share the machine's noise:

* pipeline: the training input pipeline exactly as `train` uses it (shuffle, batch,
  augmentation, one-hot, prefetch) over in-memory uint8 images;
* memory:   one batch already prepared as tensors, repeated: no input work at all.

pipeline / memory is the share of training speed kept with the real pipeline (target >= 90%);
on this shared 2-core machine a single step's time wanders by tens of percent, so the script
also times the pipeline alone ("pipe-only") and prints pipeline / pipe-only, the fraction of
the input pipeline's capacity that training uses: a noise-robust bound on its cost.
Frozen-base Xception tasks train the head on cached base features, so their rows time the
one-off feature extraction and the head; task2 times one AutoKeras trial.

    .venv/bin/python benchmarks/training_throughput.py [--tasks task1 task3] [--images 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from training import pipeline, tasks
from training.data import Limits, load_dataset
from training.models import build_model, xception
from training.recipe import compile_model

STEPS = {"cnn": 8, "alexnet": 8, "xception": 6}


def _timed_fit(model, dataset, steps: int, batch: int) -> float:
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def pipeline_alone(dataset, batch: int, batches: int = 40) -> float:
    """Images/s the input pipeline produces with no training at all."""
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def measure(model, images, labels, num_classes, config, steps: int, rounds: int) -> tuple[float, float, float]:
    batch = config.batch_size
    piped = pipeline.training_dataset(images, labels, num_classes, batch, config.augment, config.seed).repeat()
    alone = pipeline_alone(piped, batch)
    first_images, first_labels = next(iter(piped))
    in_memory = tf.data.Dataset.from_tensors((first_images, first_labels)).repeat()
    _timed_fit(model, piped, 2, batch)  # Warm-up: trace and compile the train step.
    _timed_fit(model, in_memory, 2, batch)
    piped_rates, memory_rates = [], []
    for round_index in range(rounds):
        # Alternate which goes first, so neither always runs right after the other.
        order = ((piped, piped_rates), (in_memory, memory_rates))
        for dataset, rates in order if round_index % 2 == 0 else order[::-1]:
            rates.append(_timed_fit(model, dataset, steps, batch))
    return statistics.median(piped_rates), statistics.median(memory_rates), alone


def run_task(name: str, data_dir: str, max_images: int, rounds: int, mixed_precision: bool = False) -> list[str]:
    config = tasks.resolve(name, "recommended", weights="none", mixed_precision=mixed_precision or None)
    dataset = load_dataset(config.dataset, data_dir, config.input_size, Limits(max_images, 256))
    images, labels, classes = dataset.train.images, dataset.train.labels, dataset.num_classes
    label = f"{name}{' bf16' if mixed_precision else ''}"
    if config.architecture == "autokeras":
        from training.models import autokeras_search
        from training.run_context import RunOptions
        from training.run_dir import RunDirectory

        smoke = tasks.with_overrides(config, max_trials=1, epochs=2, time_budget_hours=None)
        with tempfile.TemporaryDirectory() as folder:
            result = autokeras_search.search(smoke, dataset, RunDirectory(folder), RunOptions(verbose=0), seconds=None)
        rate = len(images) / min(row["train_seconds"] for row in result.history)
        return [f"{label:<10} {'autokeras 1 trial':<26} {rate:>9.1f} {'-':>9} {'-':>7}  (best epoch of the trial)"]
    keras.config.set_dtype_policy("mixed_bfloat16" if mixed_precision else "float32")
    try:
        if config.init_from:  # task6: fine-tune a task5 model (random weights here), top blocks unfrozen.
            model = build_model(tasks.resolve(config.init_from, "recommended", weights="none"), classes)
            xception.unfreeze_top(model, config.unfreeze_from_block)
        else:
            model = build_model(config, classes)
    finally:
        keras.config.set_dtype_policy("float32")
    rows = []
    if config.bottleneck:
        features, head = xception.split_for_bottleneck(model)
        features.predict_on_batch(images[:64].astype(np.float32))
        start = time.perf_counter()
        cached = np.concatenate([features.predict_on_batch(images[i : i + 128].astype(np.float32)) for i in range(0, len(images), 128)]).astype(
            np.float16
        )
        rate = len(images) / (time.perf_counter() - start)
        rows.append(f"{label:<10} {'base features (once)':<26} {rate:>9.1f} {'-':>9} {'-':>7}")
        compile_model(head, config, classes)
        piped, memory, alone = measure(head, cached, labels, classes, config, 50, rounds)
        rows.append(_row(label, "head on cached features", piped, memory, alone))
        return rows
    compile_model(model, config, classes)
    piped, memory, alone = measure(model, images, labels, classes, config, STEPS[config.architecture], rounds)
    what = f"{config.architecture} {config.input_size[0]}px b{config.batch_size}{' aug' if config.augment else ''}"
    rows.append(_row(label, what, piped, memory, alone))
    return rows


def _row(label: str, what: str, piped: float, memory: float, alone: float) -> str:
    # piped/memory: the share of training speed kept with the real pipeline (noisy on a shared
    # machine); piped/alone: the pipeline's own cost per trained image, a noise-robust bound.
    return f"{label:<10} {what:<26} {piped:>9.1f} {memory:>9.1f} {piped / memory:>7.1%} {alone:>10.0f} {piped / alone:>8.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=["demo", "task1", "task2", "task3", "task4", "task5", "task6"])
    parser.add_argument("--images", type=int, default=1024, help="training images loaded per task")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="also time task1 and task3 under mixed_bfloat16")
    parser.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR"))
    args = parser.parse_args()
    print(
        f"{'task':<10} {'what':<26} {'pipeline':>9} {'memory':>9} {'share':>7} {'pipe-only':>10} {'cost':>8}"
        f"   (training images/s, median of {args.rounds}; pipe-only: images/s the pipeline alone produces)"
    )
    for name in args.tasks:
        for row in run_task(name, args.data_dir, args.images, args.rounds):
            print(row, flush=True)
        if args.bf16 and name in ("task1", "task3"):
            for row in run_task(name, args.data_dir, args.images, args.rounds, mixed_precision=True):
                print(row, flush=True)


if __name__ == "__main__":
    main()
