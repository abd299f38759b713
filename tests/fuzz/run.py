"""Runs fuzz harnesses (tests/fuzz/harnesses.py) under atheris, coverage-guided (libFuzzer), each
in its own process for a bounded time, and reports executions, coverage and findings.

    python -m tests.fuzz.run                       # every harness, 100 s each (what `make fuzz` runs)
    python -m tests.fuzz.run image v2_binary --seconds 30
    python -m tests.fuzz.run --replay              # the committed corpus through every harness, no fuzzing

Each harness starts from its committed seed corpus, ``tests/fuzz/corpus/NAME/`` (valid inputs and
the regression inputs of past findings), and writes the inputs it finds interesting to
``build/fuzz/NAME/corpus/``. An input that raises anything but a documented refusal, runs longer
than ``--timeout`` seconds, or takes the process past ``--rss-limit-mb`` is a finding: libFuzzer
saves it as ``build/fuzz/NAME/crash-*`` (or ``timeout-*``, ``oom-*``) and the run exits non-zero.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
OUT = ROOT / "build" / "fuzz"
NAMES = ("image", "multipart", "tf_serving_json", "v2_json", "v2_binary", "protobuf")


def fuzz_one(name: str, seconds: int, timeout: int, rss_limit_mb: int) -> None:
    """In this process: instruments our code and the parsers it calls, then fuzzes ``name``."""
    import atheris

    with atheris.instrument_imports(include=["serving", "training", "PIL", "starlette", "multipart", "python_multipart", "tests.fuzz"]):
        import PIL.Image  # noqa: F401 (its format plugins are imported, and so instrumented, on first use)

        from tests.fuzz import harnesses

    target = harnesses.HARNESSES[name]
    harnesses.state()  # Loaded before fuzzing: a slow first input is not a hang.
    work = OUT / name
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    arguments = [
        sys.argv[0],
        str(work / "corpus"),
        str(CORPUS / name),
        f"-max_total_time={seconds}",
        f"-timeout={timeout}",
        f"-rss_limit_mb={rss_limit_mb}",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(arguments, target)
    atheris.Fuzz()


def replay(names) -> int:
    """Every committed corpus input through its harness, in this process; returns the failures."""
    from tests.fuzz import harnesses

    failures = 0
    for name in names:
        for path in sorted((CORPUS / name).iterdir()):
            try:
                harnesses.HARNESSES[name](path.read_bytes())
            except Exception as error:  # A finding: report it, go on with the others.
                failures += 1
                print(f"{name}/{path.name}: {type(error).__name__}: {error}", file=sys.stderr)
    return failures


def summary(name: str, output: str, returncode: int) -> str:
    executions = re.search(r"stat::number_of_executed_units: (\d+)", output)
    coverage = re.findall(r"cov: (\d+) ft: (\d+)", output)
    seconds = re.search(r"Done (\d+) runs in (\d+) second", output)
    cov, features = coverage[-1] if coverage else ("?", "?")
    rate = f"{int(seconds[1]) / max(1, int(seconds[2])):.0f}/s" if seconds else "?"
    verdict = "ok" if returncode == 0 else f"FINDING (exit {returncode}; see build/fuzz/{name}/)"
    return f"{name:<16} {executions[1] if executions else '?':>9} executions  {rate:>7}  coverage {cov:>5} edges, {features:>6} features  {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"harnesses (default: all of {', '.join(NAMES)})")
    parser.add_argument("--seconds", type=int, default=100, help="fuzzing time per harness")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it counts as a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=3072, help="memory past which an input counts as a finding")
    parser.add_argument("--replay", action="store_true", help="only run the committed corpus through the harnesses")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.names or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown harness {', '.join(unknown)}; harnesses: {', '.join(NAMES)}")
    if args.child:
        fuzz_one(args.child, args.seconds, args.timeout, args.rss_limit_mb)
        return 0
    if args.replay:
        return 1 if replay(names) else 0
    failed = 0
    for name in names:
        command = [sys.executable, "-m", "tests.fuzz.run", "--child", name, "--seconds", str(args.seconds)]
        command += ["--timeout", str(args.timeout), "--rss-limit-mb", str(args.rss_limit_mb)]
        ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.seconds + 300)
        output = ran.stdout + ran.stderr
        (OUT / name).mkdir(parents=True, exist_ok=True)
        (OUT / name / "fuzz.log").write_text(output)
        print(summary(name, output, ran.returncode), flush=True)
        failed += ran.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
