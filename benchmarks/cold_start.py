"""How long a worker takes from its process start to ready, phase by phase (not part of the suite).

    BENTOML_HOME=<store> .venv/bin/python benchmarks/cold_start.py [--models digits-cnn,tinyimagenet-cnn]
        [--rounds 3] [--load 4] [--repo DIR]

Starts `bentoml serve` with two workers, reads each worker's own start-up line (``worker ready in
… s: imports …, models …, gRPC server …``, timed from the worker's process start), then SIGKILLs
one worker and times its replacement, optionally while ``--load`` client threads keep the other
worker busy (the condition #6 measured 8-11 s in). ``--repo`` serves another checkout (one with
the same start-up line) to compare. Prints one row per start and the mean of each phase.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"worker ready in (?P<total>[\d.]+) s: (?P<phases>.*)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready_lines(log: Path) -> list[dict]:
    rows = []
    for match in READY.finditer(log.read_text(errors="replace")):
        phases = dict(re.findall(r"([a-zA-Z][\w ()-]*?) ([\d.]+) s", match["phases"]))
        rows.append({"total": float(match["total"]), **{name.strip(): float(value) for name, value in phases.items()}})
    return rows


def wait_for(log: Path, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ready_lines(log)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {count} workers became ready in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def workers(pid: int) -> list:
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True) if "_bentoml_impl.worker.service" in " ".join(p.cmdline())]


def load(url: str, stop: threading.Event) -> None:
    import httpx
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 140, 30)).save(buffer, "JPEG")
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                client.post(f"{url}/classify", content=buffer.getvalue(), headers={"Content-Type": "image/jpeg"})
            except Exception:  # noqa: BLE001 - the killed worker's calls fail; keep loading
                time.sleep(0.05)


def one_round(args, log: Path) -> list[tuple[str, dict]]:
    port, env = free_port(), {**os.environ, "IMGCLF_MODELS": args.models, "IMGCLF_WORKERS": "2", "IMGCLF_GRPC_PORT": str(free_port())}
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:Classifier", "--port", str(port)],
        cwd=args.repo,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stop = threading.Event()
    try:
        first = wait_for(log, 2)
        threads = [threading.Thread(target=load, args=(f"http://127.0.0.1:{port}", stop), daemon=True) for _ in range(args.load)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        victim = workers(process.pid)[0]
        survivors = {w.pid for w in workers(process.pid)} - {victim.pid}
        victim.send_signal(signal.SIGKILL)
        killed = time.time()
        replaced = wait_for(log, 3)[2]
        replaced["since kill"] = time.time() - killed  # Polled every 0.1 s.
        newcomer = next(w for w in workers(process.pid) if w.pid not in survivors)
        replaced["respawn"] = newcomer.create_time() - killed  # From the kill to the new process's start.
        stop.set()
        return [("first start", row) for row in first[:2]] + [(f"replacement{' under load' if args.load else ''}", replaced)]
    finally:
        stop.set()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="digits-cnn,tinyimagenet-cnn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=4, help="client threads classifying while a worker is replaced (0: none)")
    parser.add_argument("--repo", default=str(ROOT), help="the checkout to serve")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.rounds):
            rows += one_round(args, Path(scratch) / f"server-{index}.log")
    phases = list(dict.fromkeys(key for _, row in rows for key in row if key != "total"))
    print(f"{'start':<26} {'total s':>8} " + " ".join(f"{phase[:22]:>22}" for phase in phases))
    for kind, row in rows:
        print(f"{kind:<26} {row['total']:>8.2f} " + " ".join(f"{row.get(phase, float('nan')):>22.2f}" for phase in phases))
    for kind in dict.fromkeys(kind for kind, _ in rows):
        chosen = [row for k, row in rows if k == kind]
        means = " ".join(f"{sum(r.get(p, 0) for r in chosen) / len(chosen):>22.2f}" for p in phases)
        print(f"{'mean ' + kind:<26} {sum(r['total'] for r in chosen) / len(chosen):>8.2f} {means}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
