"""Training throughput of the from-scratch tasks, float32 and bfloat16 side by side, against this machine's measured peak.

For the tasks trained from scratch (task1, task3, the demo; task2 as one AutoKeras trial) it trains the
`recommended` preset's real model on real images (from $IMGCLF_DATA_DIR, capped) in three forms,
timed in turn within each round, the order rotating, so that all share the machine's noise:

* before:   float32 with Keras' own batch norm, the code as it was before the fused layer and
            bfloat16 (`precision.saved_copy` of the model is exactly that model);
* float32:  today's model in float32 (fused batch norm, `training.models.batch_norm`);
* bfloat16: today's model under Keras' mixed_bfloat16.

Each is timed with the training input pipeline exactly as `train` uses it (shuffle, batch,
augmentation, one-hot, prefetch) and on one prepared batch repeated (no input work): their
ratio is the pipeline's share of a step. Training FLOPs per image are counted from the model's
layers (`training_flops`); the achieved GFLOP/s is set against the peak measured by a large
matmul in the same precision, in the same run. The last lines compare what `--precision auto`
would train in now with `before`, against the throughput targets. On a CPU without native
bfloat16 (`precision.bfloat16_support`) the bfloat16 form and peak are left out, as `auto`
leaves them out: emulated, a single bfloat16 form took longer than the rest of the run.
task4-6 (float32, random weights here) get their feature extraction and head rates.

    .venv/bin/python benchmarks/training_throughput.py [--tasks task1 task3 task2 task4 task5 task6] [--images 2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import training  # noqa: F401  Before keras imports TensorFlow: it sets TensorFlow's oneDNN default.

# isort: split
import keras
import numpy as np
import tensorflow as tf

from training import pipeline, precision, recipe, tasks
from training.data import Limits, load_dataset
from training.models import build_model

STEPS = 40  # batches per timing: a fit starts a new input iterator, whose start-up 8 batches did not amortise
TARGETS = {"task1": 1.6, "task3": 1.3}  # speed-up of the recommended preset over `before`
FORMS = ("before", "float32", "bfloat16")


def training_flops(model: keras.Model) -> int:
    """Floating-point operations to train on one image: every convolution's and dense layer's
    multiply-adds (2 FLOPs each) for the forward pass, the weight gradient and the input gradient,
    which the first layer does not need (its input is the image). Batch norm, pooling and
    activations are element-wise and not counted: well under 1% of these."""
    total, first = 0, True
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, channels_in, channels_out = layer.kernel.shape
            out_h, out_w = layer.output.shape[1:3]
            forward = 2 * kernel_h * kernel_w * channels_in * channels_out * out_h * out_w
        elif isinstance(layer, keras.layers.Dense):
            forward = 2 * int(np.prod(layer.kernel.shape))
        else:
            continue
        total += forward * (2 if first else 3)
        first = False
    return total


def peak_gflops(dtype: tf.DType, size: int = 4096, repeats: int = 5) -> float:
    """The best GFLOP/s of a size x size matmul in ``dtype`` on this machine (TensorFlow's threads)."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.linalg.matmul(x, y), tf.float32)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


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


def _models(config, classes: int, forms: tuple[str, ...]) -> dict[str, keras.Model]:
    with precision.policy("float32"):
        today = build_model(config, classes)
    models = {"before": precision.saved_copy(today), "float32": today}
    if "bfloat16" in forms:
        with precision.policy("bfloat16"):
            models["bfloat16"] = build_model(config, classes)
    for model in models.values():
        recipe.compile_model(model, config, classes)
    return models


def measure_task(name: str, data_dir: str, max_images: int, rounds: int, forms: tuple[str, ...] = FORMS) -> dict[str, dict]:
    config = tasks.resolve(name, "recommended")
    dataset = load_dataset(config.dataset, data_dir, config.input_size, Limits(max_images, 256))
    images, labels, classes, batch = dataset.train.images, dataset.train.labels, dataset.num_classes, config.batch_size
    piped = pipeline.training_dataset(images, labels, classes, batch, config.augment, config.seed).repeat()
    first_images, first_labels = next(iter(piped))
    in_memory = tf.data.Dataset.from_tensors((first_images, first_labels)).repeat()
    models = _models(config, classes, forms)
    flops = training_flops(models["float32"])
    for model in models.values():  # Trace and warm up each train step.
        _timed_fit(model, piped, 2, batch)
        _timed_fit(model, in_memory, 2, batch)
    rates = {form: {"pipeline": [], "memory": []} for form in forms}
    for round_index in range(rounds):
        order = forms[round_index % len(forms) :] + forms[: round_index % len(forms)]
        for form in order:
            for source, data in (("pipeline", piped), ("memory", in_memory))[:: 1 if round_index % 2 == 0 else -1]:
                rates[form][source].append(_timed_fit(models[form], data, STEPS, batch))
    alone = pipeline_alone(piped, batch)
    result = {form: {source: statistics.median(values) for source, values in sources.items()} for form, sources in rates.items()}
    for row in result.values():
        row.update(flops=flops, pipe_only=alone)
    return result


def measure_autokeras(data_dir: str, max_images: int, forms: tuple[str, ...] = FORMS) -> dict[str, dict]:
    """task2: one AutoKeras trial (its first network, task1's CNN) in each precision, its best epoch."""
    from training.models import autokeras_search
    from training.run_context import RunOptions
    from training.run_dir import RunDirectory

    config = tasks.resolve("task2", "recommended")
    dataset = load_dataset(config.dataset, data_dir, config.input_size, Limits(max_images, 256))
    smoke = tasks.with_overrides(config, max_trials=1, epochs=3, time_budget_hours=None)
    result = {}
    for form in [form for form in ("float32", "bfloat16") if form in forms]:
        with tempfile.TemporaryDirectory() as folder, precision.policy(form):
            searched = autokeras_search.search(smoke, dataset, RunDirectory(folder), RunOptions(verbose=0), seconds=None)
        best = len(dataset.train) / min(row["train_seconds"] for row in searched.history)
        result[form] = {"pipeline": best, "memory": None, "flops": training_flops(searched.model.layers[1]), "pipe_only": None}
    return result


def measure_xception(name: str, data_dir: str, max_images: int, rounds: int) -> list[str]:
    """task4-6 (float32): the frozen base's one-off feature extraction and the head on cached
    features (task4, task5), or the fine-tuning of the top blocks (task6, random weights here)."""
    from training.models import xception

    config = tasks.resolve(name, "recommended", weights="none")
    dataset = load_dataset(config.dataset, data_dir, config.input_size, Limits(max_images, 256))
    images, labels, classes, batch = dataset.train.images, dataset.train.labels, dataset.num_classes, config.batch_size
    if config.init_from:
        model = build_model(tasks.resolve(config.init_from, "recommended", weights="none"), classes)
        xception.unfreeze_top(model, config.unfreeze_from_block)
        recipe.compile_model(model, config, classes)
        data = pipeline.training_dataset(images, labels, classes, batch, config.augment, config.seed).repeat()
        _timed_fit(model, data, 2, batch)
        rate = statistics.median(_timed_fit(model, data, 6, batch) for _ in range(rounds))
        return [f"{name:<6} {'float32':<9} {rate:>9.0f}   (top blocks fine-tuned)"]
    features, head = xception.split_for_bottleneck(build_model(config, classes))
    features.predict_on_batch(images[:64].astype(np.float32))
    start = time.perf_counter()
    cached = np.concatenate([features.predict_on_batch(images[i : i + 128].astype(np.float32)) for i in range(0, len(images), 128)])
    extraction = len(images) / (time.perf_counter() - start)
    recipe.compile_model(head, config, classes)
    data = pipeline.training_dataset(cached.astype(np.float16), labels, classes, batch, False, config.seed).repeat()
    _timed_fit(head, data, 2, batch)
    rate = statistics.median(_timed_fit(head, data, 50, batch) for _ in range(rounds))
    return [
        f"{name:<6} {'float32':<9} {extraction:>9.0f}   (base features, once)",
        f"{name:<6} {'float32':<9} {rate:>9.0f}   (head on cached features)",
    ]


def _row(task: str, form: str, row: dict, peaks: dict[str, float], base: float | None) -> str:
    rate = row["pipeline"]
    gflops = row["flops"] * rate / 1e9
    peak = peaks["bfloat16" if form == "bfloat16" else "float32"]
    share = f"{max(0.0, 1 - rate / row['memory']):>7.0%}" if row["memory"] else f"{'-':>7}"
    memory = f"{row['memory']:>9.0f}" if row["memory"] else f"{'-':>9}"
    pipe_only = f"{row['pipe_only']:>9.0f}" if row["pipe_only"] else f"{'-':>9}"
    speedup = f"{rate / base:>7.2f}x" if base else f"{'':>8}"
    return f"{task:<6} {form:<9} {rate:>9.0f} {memory} {speedup} {row['flops'] / 1e6:>9.0f} {gflops:>8.0f} {gflops / peak:>7.1%} {share} {pipe_only}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=["task1", "task3", "task2", "demo", "task4", "task5", "task6"])
    parser.add_argument("--images", type=int, default=2048, help="training images loaded per task")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR"))
    args = parser.parse_args()
    supported, why = precision.bfloat16_support()
    forms = FORMS if supported else tuple(form for form in FORMS if form != "bfloat16")
    peaks = {"float32": peak_gflops(tf.float32)}
    if supported:
        peaks["bfloat16"] = peak_gflops(tf.bfloat16)
    bfloat16_peak = f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s" if supported else "bfloat16 not measured"
    print(f"peak (4096x4096 matmul): float32 {peaks['float32']:.0f} GFLOP/s, {bfloat16_peak}; bfloat16: {why}")
    print(
        f"{'task':<6} {'form':<9} {'images/s':>9} {'memory':>9} {'vs before':>8} {'MFLOP/img':>9} {'GFLOP/s':>8} {'of peak':>7} "
        f"{'input':>7} {'pipe-only':>9}   (median of {args.rounds} rounds; images/s with the real pipeline; memory: one batch repeated)"
    )
    summary = []
    for name in args.tasks:
        if name in ("task4", "task5", "task6"):
            for line in measure_xception(name, args.data_dir, args.images, args.rounds):
                print(line, flush=True)
            continue
        if name == "task2":
            results = measure_autokeras(args.data_dir, args.images, forms)
        else:
            results = measure_task(name, args.data_dir, args.images, args.rounds, forms)
        base = results["before"]["pipeline"] if "before" in results else results["float32"]["pipeline"]
        for form, row in results.items():
            print(_row(name, form, row, peaks, base), flush=True)
        # What --precision auto trains in now: bfloat16 at 1.15x float32 or more.
        chosen = precision.choose({form: results[form]["pipeline"] for form in ("float32", "bfloat16")}).precision if supported else "float32"
        if name in TARGETS:
            speedup = results[chosen]["pipeline"] / base
            verdict = "met" if speedup >= TARGETS[name] else "NOT met"
            summary.append(f"{name}: auto trains in {chosen}: {speedup:.2f}x before's float32 images/s (target >= {TARGETS[name]}x: {verdict})")
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
