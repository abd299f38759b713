"""Accuracy within a time budget, beside the study's numbers (not part of the suite).

    python benchmarks/accuracy.py --data-dir DIR --tasks task1 task3 --budgets 30m 1h [--preset recommended]
                                  [--runs runs/accuracy] [--json runs/accuracy/results.json] [--figures docs/results]
                                  [--set KEY=VALUE ... --label NAME]

Trains each task under each budget with ``python -m training train TASK --time-budget B`` (the
export included, into the runs folder; not into the BentoML store), one run after the other so
that each has the machine to itself, and prints one table: task, preset, budget, epochs run,
training images/s, validation top-1 and top-5, the command's wall time, and the study's number
for that task. ``--set`` passes task settings to every run (``train --set``), under a ``--label``
that names their folders, so a recipe's before and after sit side by side. The same table is
written as JSON. A run whose metrics.json exists is reused, so an interrupted benchmark continues
where it stopped (delete the run's folder to measure it again); a folder holding an unfinished or
failed run stops the benchmark with its name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The study's validation top-1 (its notebooks; task4 was at chance, task6 not reported apart).
STUDY = {"task1": 0.22, "task2": 0.468, "task3": 0.096, "task4": 0.005, "task5": 0.465}


def run_one(task: str, preset: str, budget: str, data_dir: str, runs: Path, settings: list[str] = (), label: str = "") -> dict:
    run = runs / f"{task}-{preset}-{budget}" if not label else runs / f"{task}-{preset}-{label}-{budget}"
    metrics_file = run / "metrics.json"
    wall_file = run / "wall_seconds.txt"
    if wall_file.is_file():  # Written only when the command succeeded.
        print(f"reusing {run} (delete it to measure again)", flush=True)
    else:
        if run.exists():
            print(f"{run} holds an unfinished or failed run; delete it, or --resume it by hand, then run this again", file=sys.stderr)
            return None
        command = [sys.executable, "-m", "training", "train", task, "--preset", preset, "--time-budget", budget, "--data-dir", data_dir]
        command += ["--run-dir", str(run), "--export-root", str(runs / "exports"), "--no-store", "--quiet"]
        command += [f"--set={setting}" for setting in settings]
        if task == "task6":
            command += ["--init-run", str(runs / f"task5-{preset}-{budget}")]
        print("$", " ".join(command), flush=True)
        start = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if result.returncode != 0:  # Reported at the end; the other runs still go.
            print(f"{task} at {budget} failed (exit {result.returncode}); see {run / 'train.log'}", file=sys.stderr, flush=True)
            return None
        wall_file.write_text(f"{time.monotonic() - start:.1f}\n")
    metrics = json.loads(metrics_file.read_text())
    return {
        "task": task,
        "preset": preset,
        "label": label,
        "settings": list(settings),
        "budget": budget,
        "epochs_run": metrics["epochs_completed"],
        "epochs_planned": metrics.get("epochs_planned"),
        "search_trials": metrics.get("search_trials"),  # task2
        "images_per_second": metrics.get("images_per_second"),
        "val_top1": metrics["val_top1"],
        "val_top5": metrics["val_top5"],
        "wall_seconds": float(wall_file.read_text()) if wall_file.is_file() else None,
        "study_top1": STUDY.get(task),
        "cores": os.cpu_count(),
        "run": str(run),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("IMGCLF_DATA_DIR"), help="the dataset folder (default: $IMGCLF_DATA_DIR)")
    parser.add_argument("--tasks", nargs="+", default=["task1", "task3"])
    parser.add_argument("--budgets", nargs="+", default=["30m", "1h"])
    parser.add_argument("--preset", default="recommended")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a task setting for every run (train --set); needs --label")
    parser.add_argument("--label", default="", help="names the runs' folders (TASK-PRESET-LABEL-BUDGET) and the table's rows")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "accuracy")
    parser.add_argument("--json", type=Path, help="where to write the table (default: RUNS/results.json)")
    parser.add_argument("--figures", type=Path, help="copy each run's curves.png here as TASK-BUDGET.png (for docs/results.md)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("--data-dir (or $IMGCLF_DATA_DIR) is needed")
    if args.set and not args.label:
        parser.error("--set needs --label: runs with other settings must not reuse the preset's runs")
    args.runs.mkdir(parents=True, exist_ok=True)
    measured = [run_one(task, args.preset, budget, args.data_dir, args.runs, args.set, args.label) for task in args.tasks for budget in args.budgets]
    rows = [row for row in measured if row is not None]
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for r in rows:
            name = f"{r['task']}-{r['label']}-{r['budget']}" if r["label"] else f"{r['task']}-{r['budget']}"
            shutil.copyfile(Path(r["run"]) / "curves.png", args.figures / f"{name}.png")
    out = args.json or args.runs / "results.json"
    out.write_text(json.dumps({"data_dir": args.data_dir, "rows": rows}, indent=2) + "\n")
    print(f"\n{args.data_dir}, {os.cpu_count()} cores")
    print(f"{'task':<6} {'preset':<12} {'budget':>6} {'epochs':>6} {'img/s':>7} {'top-1':>6} {'top-5':>6} {'wall':>7} {'study top-1':>11}")
    for r in rows:
        study = f"{r['study_top1']:.1%}" if r["study_top1"] is not None else "-"
        wall = f"{r['wall_seconds'] / 60:.1f}m" if r["wall_seconds"] else "-"
        ips = f"{r['images_per_second']:.0f}" if r["images_per_second"] else "-"
        scores = f"{r['val_top1']:>6.1%} {r['val_top5']:>6.1%}"
        preset = f"{r['preset']} {r['label']}".strip()
        print(f"{r['task']:<6} {preset:<12} {r['budget']:>6} {r['epochs_run']:>6} {ips:>7} {scores} {wall:>7} {study:>11}")
    print(f"\nwritten: {out}")
    failed = len(measured) - len(rows)
    if failed:
        print(f"{failed} run(s) failed or were left unfinished: see above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
