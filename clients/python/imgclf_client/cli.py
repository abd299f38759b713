"""The command-line client.

    imgclf classify IMAGE... [--url URL | --grpc HOST:PORT] [--model NAME] [--version V] [--top-k K] [--json]
    imgclf explain IMAGE --out HEAT.png [--class-index N] [--url URL | --grpc HOST:PORT] [--model NAME] [--json]
    imgclf feedback IMAGE --label LABEL [--url URL | --grpc HOST:PORT] [--model NAME] [--json]
    imgclf models [--url URL | --grpc HOST:PORT] [--json]

Each image is sent on its own, so one bad image gets its own error line and the rest are still
classified. Exit status: 0 when every image was classified, 1 when some failed, 2 on a usage
error or when the server cannot be used at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from imgclf_client.errors import APIConnectionError, APITimeoutError, AuthenticationError, ImgclfError, UnavailableError
from imgclf_client.grpc_client import GrpcClient
from imgclf_client.http_client import DEFAULT_URL, HttpClient

# Errors after which no other image can succeed either.
FATAL = (APIConnectionError, AuthenticationError, APITimeoutError, UnavailableError)


def _client(args):
    token = args.token or os.environ.get("IMGCLF_TOKEN")
    if args.grpc:
        return GrpcClient(args.grpc, timeout=args.timeout, retries=args.retries, token=token, tls=args.tls, ca_file=args.ca_file)
    return HttpClient(args.url, timeout=args.timeout, retries=args.retries, token=token, ca_file=args.ca_file)


def _classify(args) -> int:
    failures, rows, answers = 0, [], []
    with _client(args) as client:
        for path in args.images:
            try:
                result = client.classify(path, model=args.model, version=args.version, top_k=args.top_k)
            except FATAL as error:
                print(f"imgclf: {error.message}", file=sys.stderr)
                return 2
            except ImgclfError as error:
                failures += 1
                print(f"{path}: error: {error.message}", file=sys.stderr)
                answers.append({"image": path, "error": error.message})
                continue
            answers.append(
                {"image": path, "model": result.model, "version": result.version, "classes": [dataclasses.asdict(c) for c in result.predictions[0]]}
            )
            rows.append((path, result))
    if args.json:
        print(json.dumps(answers, indent=2))
    else:
        for path, result in rows:
            print(f"{path}  ({result.model} v{result.version})")
            for rank, c in enumerate(result.predictions[0], start=1):
                print(f"  {rank}. {c.score:7.2%}  {c.label:<12} {c.name}")
    return 1 if failures else 0


def _explain(args) -> int:
    from imgclf_client import inputs
    from imgclf_client.overlay import overlay

    try:
        image = inputs.one_image(args.image)
        with _client(args) as client:
            result = client.explain(image, model=args.model, class_index=args.class_index, version=args.version)
        overlay(image, result.heatmap).save(args.out)
    except ImgclfError as error:
        print(f"imgclf: {error.message}", file=sys.stderr)
        return 2 if isinstance(error, FATAL) else 1
    except (OSError, ValueError) as error:  # The overlay cannot be written (or the format is unknown).
        print(f"imgclf: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    c = result.explained
    if args.json:
        answer = {"image": args.image, "model": result.model, "version": result.version, "explained": dataclasses.asdict(c)}
        print(json.dumps({**answer, "heatmap": result.heatmap.tolist(), "informative": result.informative, "method": result.method, "out": args.out}))
    else:
        rows, cols = result.heatmap.shape
        print(f"{args.image}  ({result.model} v{result.version})")
        print(f"  explained: {c.score:7.2%}  {c.label:<12} {c.name}")
        print(f"  heatmap {rows}x{cols} ({result.method['name']}, {result.method['forward_passes']} model passes) over the image: {args.out}")
        if not result.informative:
            print("  no part of the image lowered the score when hidden: the map is uniform")
    return 0


def _feedback(args) -> int:
    try:
        with _client(args) as client:
            result = client.feedback(args.image, args.label, model=args.model, version=args.version)
    except ImgclfError as error:
        print(f"imgclf: {error.message}", file=sys.stderr)
        return 2 if isinstance(error, FATAL) else 1
    if args.json:
        print(json.dumps({"image": args.image, **dataclasses.asdict(result)}))
    else:
        seen = "already stored" if result.duplicate else "stored"
        answered = f"{result.model} v{result.version} had answered {result.predicted}, {result.score:.2%}"
        print(f"{args.image}: {seen} as {result.label} ({answered}): {result.stored}")
    return 0


def _models(args) -> int:
    try:
        with _client(args) as client:
            models = client.models()
    except ImgclfError as error:
        print(f"imgclf: {error.message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{k: v for k, v in dataclasses.asdict(m).items() if k not in ("labels", "names")} for m in models], indent=2))
        return 0
    print(f"{'model':<28} {'versions':<10} {'input':<8} {'classes':>7}  {'val_top1':>8}  task")
    for m in models:
        top1 = m.metrics.get("val_top1")
        size = "x".join(map(str, m.input_size))
        print(
            f"{m.name + (' *' if m.default else ''):<28} {','.join(map(str, m.versions)):<10} {size:<8} "
            f"{m.num_classes:>7}  {'-' if top1 is None else f'{top1:.1%}':>8}  {m.task}"
        )
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="imgclf", description="Client of the imgclf prediction service (HTTP or gRPC).")
    commands = main.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("classify", "classify image files"),
        ("explain", "explain one image's answer: write its heatmap over the image"),
        ("feedback", "send the correct label of an image the model got wrong (stored for retraining)"),
        ("models", "list the served models"),
    ):
        command = commands.add_parser(name, help=helptext)
        where = command.add_mutually_exclusive_group()
        where.add_argument("--url", default=os.environ.get("IMGCLF_URL", DEFAULT_URL), help=f"HTTP base URL (default {DEFAULT_URL}, or $IMGCLF_URL)")
        where.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC at this address instead of HTTP")
        command.add_argument("--token", help="API token sent as 'Authorization: Bearer' (default $IMGCLF_TOKEN)")
        command.add_argument("--ca-file", help="CA certificate (PEM) to trust for TLS")
        command.add_argument("--tls", action="store_true", help="gRPC over TLS with the system's CAs (or --ca-file)")
        command.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
        command.add_argument("--retries", type=int, default=3, help="retries on connection errors and 503/UNAVAILABLE (default 3)")
        command.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "classify":
            command.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF, BMP, WebP; any size)")
            command.add_argument("--model", help="model name (default: the server's default model)")
            command.add_argument("--version", type=int, help="model version (default: the latest)")
            command.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
        if name == "feedback":
            command.add_argument("image", metavar="IMAGE", help="the image file")
            command.add_argument("--label", required=True, help="its correct class id (one of the model's labels: `imgclf models --json`)")
            command.add_argument("--model", help="model name (default: the server's default model)")
            command.add_argument("--version", type=int, help="model version (default: the latest)")
        if name == "explain":
            command.add_argument("image", metavar="IMAGE", help="an image file (JPEG, PNG, GIF, BMP, WebP; any size)")
            command.add_argument("--out", required=True, metavar="HEAT.png", help="where to write the image with its heatmap over it (PNG, JPEG...)")
            command.add_argument("--class-index", type=int, help="the class to explain (default: the image's top class)")
            command.add_argument("--model", help="model name (default: the server's default model)")
            command.add_argument("--version", type=int, help="model version (default: the latest)")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.retries < 0 or args.timeout <= 0:
        print("imgclf: --retries must be >= 0 and --timeout > 0", file=sys.stderr)
        return 2
    return {"classify": _classify, "explain": _explain, "feedback": _feedback, "models": _models}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
