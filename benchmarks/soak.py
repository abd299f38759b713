"""Soak test (a script, not part of the suite): concurrency 32 for 10 minutes, half HTTP (wrk) and half
gRPC (h2load), against one `bentoml serve` of an exported model, one 64x64 JPEG per request.

After a warm-up it runs one-minute rounds back to back and prints, per round: requests/s, p50 and p99
latency per protocol, errors (wrk socket/status errors; h2load failures plus the server's own count of
failed gRPC calls from /metrics), and the API workers' resident memory. It ends with the verdict the
issue asks for: zero errors, p99 of the last minute against the first, and worker memory growth after
warm-up.

    BENTOML_HOME=<store> python benchmarks/soak.py --model tinyimagenet-cnn [--minutes 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving_load import WRK_SCRIPT, Server, grpc_errors, multipart, sample_jpeg  # noqa: E402


def worker_memory(server: Server) -> dict[int, float]:
    """Resident memory (MiB) of each API worker of the server."""
    import psutil

    memory = {}
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker.service" in " ".join(child.cmdline()):
                memory[child.pid] = child.memory_info().rss / 2**20
        except psutil.Error:
            pass
    return memory


def start_wrk(url: str, body_file: Path, script: Path, content_type: str, concurrency: int, seconds: int) -> subprocess.Popen:
    env = {**os.environ, "BODY_FILE": str(body_file), "CONTENT_TYPE": content_type}
    return subprocess.Popen(
        ["wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "30s", "-s", str(script), url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_h2load(target: str, body_file: Path, log_file: Path, concurrency: int, seconds: int) -> subprocess.Popen:
    log_file.unlink(missing_ok=True)  # h2load appends to its log.
    return subprocess.Popen(
        [
            "h2load",
            "-n",
            "100000000",
            "-D",
            str(seconds),
            "-c",
            str(concurrency),
            "-m",
            "1",
            "-d",
            str(body_file),
            "--log-file",
            str(log_file),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"http://{target}/imgclf.v1.ClassifierService/Classify",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wrk_result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    line = next((line for line in out.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{out}\n{err}")
    requests, duration, p50, p99, socket_errors, status_errors = (int(v) for v in line.split()[1:])
    return {"rate": requests / (duration / 1e6), "p50": p50 / 1000, "p99": p99 / 1000, "errors": socket_errors + status_errors}


def h2load_result(process: subprocess.Popen, log_file: Path, seconds: int) -> dict:
    out, err = process.communicate(timeout=120)
    import re

    counts = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    if not counts:
        raise RuntimeError(f"h2load failed:\n{out}\n{err}")
    # Log lines: start time (us since epoch), HTTP status, latency (us). h2load cancels the streams
    # still open when its time is up; those are not in the log as successes.
    latencies = sorted(int(line.split()[2]) / 1000 for line in log_file.read_text().splitlines() if line.split()[1] == "200")
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"rate": len(latencies) / seconds, "p50": quantiles[49], "p99": quantiles[98], "errors": int(counts[2]) + int(counts[3]) + int(counts[4])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tinyimagenet-cnn")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--round-seconds", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=32, help="in all, split evenly between HTTP and gRPC")
    parser.add_argument("--warmup", type=int, default=30, help="seconds of load before the first measured round")
    args = parser.parse_args()

    from protos.imgclf.v1 import classifier_pb2 as pb

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # Stop the server on the way out.
    jpeg = sample_jpeg()
    half = args.concurrency // 2
    server = Server("serving.service:Classifier", {"IMGCLF_MODELS": args.model}, ROOT)
    http_url, grpc_target = f"http://127.0.0.1:{server.port}", f"127.0.0.1:{server.grpc_port}"
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            body, content_type = multipart(jpeg)
            (scratch / "http-body").write_bytes(body)
            (scratch / "post.lua").write_text(WRK_SCRIPT)
            message = pb.ClassifyRequest(model_spec=pb.ModelSpec(name=args.model), images=[jpeg], top_k=5).SerializeToString()
            (scratch / "grpc-body").write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)

            def round_(seconds: int) -> dict:
                grpc_failed = grpc_errors(http_url, args.model)
                wrk = start_wrk(f"{http_url}/classify?model={args.model}", scratch / "http-body", scratch / "post.lua", content_type, half, seconds)
                h2 = start_h2load(grpc_target, scratch / "grpc-body", scratch / "h2.log", args.concurrency - half, seconds)
                http, grpc = wrk_result(wrk), h2load_result(h2, scratch / "h2.log", seconds)
                grpc["errors"] += grpc_errors(http_url, args.model) - grpc_failed
                return {"http": http, "grpc": grpc, "memory": worker_memory(server)}

            print(f"warm-up: {args.warmup} s at concurrency {args.concurrency}", flush=True)
            baseline = round_(args.warmup)["memory"]
            print(
                f"model {args.model}, one {len(jpeg)}-byte JPEG per request, {half} HTTP + {args.concurrency - half} gRPC "
                f"connections, {args.round_seconds} s rounds, {os.cpu_count()} CPUs"
            )
            print(f"{'minute':>6} {'http/s':>8} {'p50':>7} {'p99':>7} {'err':>4} {'grpc/s':>8} {'p50':>7} {'p99':>7} {'err':>4} {'worker MiB':>16}")
            for minute in range(1, args.minutes + 1):
                row = round_(args.round_seconds)
                rows.append(row)
                http, grpc = row["http"], row["grpc"]
                memory = " ".join(f"{value:.0f}" for value in row["memory"].values())
                print(
                    f"{minute:>6} {http['rate']:>8.1f} {http['p50']:>7.2f} {http['p99']:>7.2f} {http['errors']:>4} "
                    f"{grpc['rate']:>8.1f} {grpc['p50']:>7.2f} {grpc['p99']:>7.2f} {grpc['errors']:>4} {memory:>16}",
                    flush=True,
                )
    finally:
        server.stop()
    errors = sum(row["http"]["errors"] + row["grpc"]["errors"] for row in rows)
    first, last = rows[0], rows[-1]
    growth = max((last["memory"].get(pid, 0) - rss) / rss for pid, rss in baseline.items()) if baseline else float("nan")
    print(f"\nerrors: {errors}")
    print(f"p99 last/first minute: HTTP {last['http']['p99'] / first['http']['p99']:.2f}, gRPC {last['grpc']['p99'] / first['grpc']['p99']:.2f}")
    print(
        f"worker memory growth after warm-up: {100 * growth:.1f}% (largest of the workers; baseline "
        f"{', '.join(f'{v:.0f}' for v in baseline.values())} MiB)"
    )
    return 0 if errors == 0 and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
