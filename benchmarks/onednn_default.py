"""Training throughput with TensorFlow's oneDNN operations off and on (TF_ENABLE_ONEDNN_OPTS=0/1), alternating, in float32.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads, and turns oneDNN on by itself only
on x86 CPUs with AVX512-VNNI, AVX512-BF16 or AMX; importing ``training`` turns it on everywhere on
x86-64 (``training/__init__.py``). This measures what that buys on the machine it runs on: each
setting in its own child process, the settings alternating round by round so that both share the
machine's noise, the `recommended` preset's real model trained in float32 with the real input
pipeline on real images (from $IMGCLF_DATA_DIR, capped), the best of each child's timings kept.

    .venv/bin/python benchmarks/onednn_default.py [--tasks task1 task3] [--rounds 2] [--images 2048]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("0", "1")
STEPS = 20  # batches per timing
TIMINGS = 3  # timings per child process, after a warm-up fit

CHILD = """
import sys, time
from training import pipeline, precision, recipe, tasks
from training.data import Limits, load_dataset
from training.models import build_model
from tensorflow.python.util import _pywrap_util_port as port

name, data_dir, images, steps, timings = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
config = tasks.resolve(name, "recommended")
dataset = load_dataset(config.dataset, data_dir, config.input_size, Limits(images, 256))
train = dataset.train
data = pipeline.training_dataset(train.images, train.labels, dataset.num_classes, config.batch_size, config.augment, config.seed).repeat()
with precision.policy("float32"):
    model = build_model(config, dataset.num_classes)
recipe.compile_model(model, config, dataset.num_classes)
model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
best = 0.0
for _ in range(timings):
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    best = max(best, steps * config.batch_size / (time.perf_counter() - start))
print(f"RESULT {port.IsMklEnabled()} {best:.1f}")
"""


def measure(task: str, setting: str, data_dir: str, images: int) -> tuple[bool, float]:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "2"}
    arguments = [sys.executable, "-c", CHILD, task, data_dir, str(images), str(STEPS), str(TIMINGS)]
    result = subprocess.run(arguments, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{task} with TF_ENABLE_ONEDNN_OPTS={setting} failed:\n{result.stderr[-3000:]}")
    _, enabled, rate = lines[-1].split()
    return enabled == "True", float(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=["task1", "task3"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=2048, help="training images loaded per task")
    parser.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR"))
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    print(f"CPU: {cpu}; {os.cpu_count()} cores; float32 training images/s (best of {TIMINGS} timings of {STEPS} batches a child)")
    print(f"{'task':<6} {'oneDNN off':>11} {'oneDNN on':>10} {'on / off':>9}   (each round: {', '.join(SETTINGS)} alternating)")
    for task in args.tasks:
        rates: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
        for round_index in range(args.rounds):
            for setting in SETTINGS if round_index % 2 == 0 else SETTINGS[::-1]:
                enabled, rate = measure(task, setting, args.data_dir, args.images)
                if enabled != (setting == "1"):
                    raise RuntimeError(f"TF_ENABLE_ONEDNN_OPTS={setting} but TensorFlow reports oneDNN {'on' if enabled else 'off'}")
                rates[setting].append(rate)
        off, on = max(rates["0"]), max(rates["1"])
        rounds = "; ".join(f"{setting}: {', '.join(f'{rate:.0f}' for rate in values)}" for setting, values in rates.items())
        print(f"{task:<6} {off:>11.0f} {on:>10.0f} {on / off:>8.2f}x   ({rounds})", flush=True)


if __name__ == "__main__":
    main()
