"""The training command line.

    python -m training list
    python -m training train TASK --preset seed|recommended|smoke [--data-dir DIR] [--dataset folder] [--epochs N | --time-budget 30m]
                                  [--precision auto|float32|bfloat16]
                                  [--run-dir DIR] [--strategy default|mirrored|multi-worker]
                                  [--resume] [--weights imagenet|none|PATH] [--init-run DIR] [--extra-data DIR [--extra-repeat N]]
                                  [--no-export] [--export-root DIR] [--name NAME] [--no-store] [--int8 | --no-int8]
    python -m training export RUN_DIR [--name NAME] [--export-root DIR] [--no-store] [--int8 | --no-int8]
    python -m training download cifar10|tiny-imagenet --dest DIR

``--data-dir`` defaults to the IMGCLF_DATA_DIR environment variable, ``--export-root`` to
IMGCLF_EXPORT_ROOT (else ./exports); the BentoML store is BentoML's own (BENTOML_HOME).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from training import tasks

DATA_DIR_VARIABLE = "IMGCLF_DATA_DIR"
STARTED = time.monotonic()  # A --time-budget counts from here: imports and data loading are inside it.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="Train the study's image classifiers.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the tasks and their presets")
    train = commands.add_parser("train", help="train one task")
    train.add_argument("task", help=f"one of: {', '.join(tasks.TASKS)}")
    train.add_argument("--preset", default="recommended", help=f"one of: {', '.join(tasks.PRESETS)} (default: recommended)")
    train.add_argument(
        "--data-dir",
        default=os.environ.get(DATA_DIR_VARIABLE),
        help=f"folder holding the dataset in its official form (default: ${DATA_DIR_VARIABLE})",
    )
    train.add_argument("--dataset", help="train on another source, e.g. 'folder' for your own root/<class>/*.jpg")
    train.add_argument("--epochs", type=int, help="override the preset's epochs")
    train.add_argument(
        "--time-budget",
        help="wall-clock budget for the whole command (e.g. 30m, 2h, 1h30m): the epochs are planned from a measured throughput "
        "so that the schedule, evaluation and export fit; the run stops at the budget after a checkpoint in any case",
    )
    train.add_argument(
        "--precision",
        help="float32, bfloat16 or auto (the recommended presets' default): auto times both on this machine and keeps bfloat16 "
        "only where it trains at least 1.15x as fast; the saved model is float32 either way",
    )
    train.add_argument("--batch-size", type=int, help="override the preset's (global) batch size")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any task setting (repeatable); VALUE is read as JSON, e.g. --set cutmix=0.5, "
        "--set 'long_schedule={\"cutmix\": 0.5}', --set model.head_dropout=0.4",
    )
    train.add_argument("--max-train-images", type=int, help="cap the training images read")
    train.add_argument("--run-dir", help="output folder (default: runs/TASK-PRESET-TIMESTAMP)")
    train.add_argument("--strategy", default="default", help="default, mirrored or multi-worker (TF_CONFIG)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last epoch")
    train.add_argument("--weights", help="pretrained base: imagenet (download), none (random) or a local .h5 path")
    train.add_argument("--init-run", help="start from this run's trained model (a run of the same task; task6: a task5 run, which it needs)")
    train.add_argument(
        "--extra-data", help="an image folder (DIR/<class id>/*.jpg, e.g. the server's IMGCLF_FEEDBACK_ROOT) whose images join the training set"
    )
    train.add_argument("--extra-repeat", type=int, default=1, help="each --extra-data image appears this many times per epoch (default 1)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.add_argument("--no-export", action="store_true", help="do not export the trained model")
    _export_options(train)
    export = commands.add_parser("export", help="export a trained run: SavedModel + ONNX + model card + BentoML store")
    export.add_argument("run_dir", help="the run folder (holding model.keras)")
    export.add_argument("--data-dir", help="where the run's dataset is, for the parity check (default: the run's)")
    _export_options(export)
    download = commands.add_parser("download", help="download an official dataset archive")
    download.add_argument("dataset", help="cifar10 or tiny-imagenet")
    download.add_argument("--dest", default=os.environ.get(DATA_DIR_VARIABLE) or "data", help="destination folder")
    return parser


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="model name (default: the task's, e.g. tinyimagenet-cnn)")
    parser.add_argument("--export-root", help="TF Serving model base path (default: $IMGCLF_EXPORT_ROOT or ./exports)")
    parser.add_argument("--no-store", action="store_true", help="do not save the export in the BentoML model store")
    parser.add_argument(
        "--int8",
        action="store_true",
        default=None,
        help="build the int8 ONNX variant (default: as the task preset says), chosen by measurement",
    )
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="do not build the int8 ONNX variant")


def _export(run_dir, args, data_dir=None) -> None:
    from training.export import export_run

    result = export_run(run_dir, args.export_root, args.name, store=not args.no_store, data_dir=data_dir, int8=args.int8)
    parity = result.card["parity"]
    print(
        f"exported {result.name} version {result.version} to {result.path}"
        + (f" and the BentoML store as {result.store_tag}" if result.store_tag else "")
    )
    print(
        f"parity: ONNX vs Keras max |difference| {parity['onnx_vs_keras']['max_abs_difference']:.2g}; "
        f"classify signature vs shared resize: max pixel difference {parity['classify_vs_shared_path']['max_pixel_difference']:.0f}, "
        f"top-1 identical on {parity['classify_vs_shared_path']['inputs']} images ({parity['inputs']})"
        + (f"; {flips} near-tied image(s) changed class with the rounding" if (flips := parity["classify_vs_shared_path"]["rounding_flips"]) else "")
    )
    if "int8" in result.card:
        int8 = result.card["int8"]
        tried = len(int8["configurations"])
        if int8["usable"]:
            print(
                f"int8: {int8['configuration']}, the fastest of {tried} configurations within {int8['max_accuracy_drop_points']} points: "
                f"top-1 {int8['int8_top1']:.4f} vs {int8['float_top1']:.4f} float ({int8['accuracy_drop_points']:+.2f} points drop), "
                f"speed-up {int8['speedup']['batch1']}x at batch 1, {int8['speedup']['batch32']}x at batch 32"
            )
        else:
            print(f"int8: not usable: {int8['reason']}")


def _list() -> None:
    width = max(len(name) for name in tasks.TASKS)
    for name, config in tasks.TASKS.items():
        default = " (default)" if name == tasks.DEFAULT_TASK else ""
        print(f"{name:<{width}}  {config.title}{default}")
        size = "x".join(map(str, config.input_size))
        print(f"{'':<{width}}  dataset {config.dataset}, {config.architecture}, input {size}, presets: {', '.join(tasks.PRESETS)}")


def _train(args) -> int:
    from training import budget, precision

    time_budget = None
    if args.time_budget is not None:
        if args.epochs is not None:
            raise ValueError("--epochs and --time-budget cannot be used together: the budget picks the epochs; give one of them")
        if args.strategy == "multi-worker":
            raise ValueError("--time-budget is not supported with --strategy multi-worker (each worker would plan its own epochs)")
        seconds = budget.parse(args.time_budget)
    from training.task_config import parse_settings

    settings = parse_settings(args.set)
    flags = dict(
        dataset=args.dataset,
        weights=args.weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_train_images=args.max_train_images,
        precision=args.precision and precision.check(args.precision),
    )
    named = {key: value for key, value in flags.items() if value is not None}  # The flags given.
    for key in named.keys() & settings.keys():
        raise ValueError(f"--set {key}=... and --{key.replace('_', '-')} both set {key}: give one of them")
    if args.time_budget is not None and "epochs" in settings:
        raise ValueError("--set epochs=... and --time-budget cannot be used together: the budget picks the epochs; give one of them")
    config = tasks.resolve(args.task, args.preset, **settings, **named)
    if args.time_budget is not None:
        int8 = config.int8 if args.int8 is None else args.int8
        time_budget = budget.Budget(seconds, STARTED, export=not args.no_export, int8=int8 and not args.no_export)
    if args.strategy not in ("default", "mirrored", "multi-worker"):
        raise ValueError(f"unknown strategy {args.strategy!r}; known: default, mirrored, multi-worker")
    if args.strategy == "multi-worker" and "TF_CONFIG" not in os.environ:
        from training.cluster import tf_config_from_indexed_job

        config_json = tf_config_from_indexed_job(os.environ)  # A pod of a Kubernetes Indexed Job.
        if config_json:
            os.environ["TF_CONFIG"] = config_json
    if args.resume and not args.run_dir:
        raise ValueError("--resume needs --run-dir, the run to continue")
    if not args.no_export and args.name:
        from training.export import check_name

        check_name(args.name)  # Before hours of training, not after.
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/{args.task}-{args.preset}-{stamp}")
    from training import preflight

    preflight.check(config, run_dir, args.preset, args.resume, args.init_run, args.strategy == "multi-worker", args.data_dir, args.extra_data)
    if args.extra_repeat < 1:
        raise ValueError(f"--extra-repeat must be at least 1, got {args.extra_repeat}")
    from training.train import RunOptions, train  # TensorFlow is imported here, after the quick checks.

    options = RunOptions(
        preset=args.preset,
        data_dir=args.data_dir,
        strategy=args.strategy,
        resume=args.resume,
        init_run=args.init_run,
        extra_data=args.extra_data,
        extra_repeat=args.extra_repeat,
        verbose=2 if args.quiet else "auto",
        budget=time_budget,
    )
    path = train(config, run_dir, options)
    if path is None:
        print("worker finished; the chief worker wrote the run")
        return 0
    print(f"run finished: {path}")
    print((path / "metrics.json").read_text())
    if not args.no_export:
        _export(path, args, args.data_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list()
            return 0
        if args.command == "download":
            from training.data.download import download

            print(download(args.dataset, args.dest))
            return 0
        if args.command == "export":
            _export(args.run_dir, args, args.data_dir)
            return 0
        return _train(args)
    except Exception as error:  # One clear line for the user's mistakes; tracebacks for our bugs.
        from training.errors import USER_ERRORS
        from training.export.parity import ParityError

        if isinstance(error, USER_ERRORS):
            print(f"error: {error}", file=sys.stderr)
            return 2
        if isinstance(error, ParityError):
            print(f"error: export refused: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
