"""Load benchmark of the prediction service against two BentoML baselines (not part of the suite).

    python benchmarks/serving_load.py [--model tinyimagenet-cnn] [--duration 10] [--concurrency 1 8 32]

Runs, in one go on this machine, with one 64x64 JPEG per request (a real Tiny ImageNet
validation image when $IMGCLF_DATA_DIR has the zip):

* in-process: decode + resize + ONNX Runtime in one loop, batch 1 and batch 32 (the ceiling), and
  one explanation at a time (decode, the 65 occluded copies through the model, the heatmap);
* the project's service (`serving.service:Classifier`): HTTP single images and 32-image batches
  (wrk), the same single image as an Open Inference Protocol v2 infer (binary tensor extension,
  top 5 by the classification extension: "HTTP v2"), gRPC single images (h2load sending the Classify call as gRPC frames; errors are the
  failed streams plus the server's own count of non-OK gRPC requests from /metrics; without
  h2load, an asyncio grpcio client, which takes CPU from the server on a small machine), and the
  same as a v2 ModelInfer call with raw_input_contents ("gRPC v2", h2load only);
* baseline "onnx": ONNX Runtime in a BentoML API worker, no batching (baselines/onnx_service.py);
* baseline "keras": a BentoML-tutorial service calling Keras predict per request (baselines/keras_service.py).

The service's rows include ``HTTP explain``: POST /explain, whose p50 is the ms per explanation
and whose images/s counts the model's images (65 per explanation).

Prints requests/s, images/s, p50/p99 latency and errors per concurrency. Needs `wrk` and
`h2load` (`apt-get install wrk nghttp2-client`; `make bench` installs them) and the model in the
BentoML store. `--service-env K=V[,K=V]` adds a run of the service with other settings.
`--monitoring-overhead ROUNDS` instead compares the service with prediction monitoring on and off
(IMGCLF_MONITORING), both running, timed in turn for ROUNDS rounds.
`--int8` adds the model's int8 variant (its card must hold a usable one): the in-process ceiling of
``model.int8.onnx`` beside ``model.onnx``, and the service run twice, IMGCLF_PREFER_INT8=0 then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRK_SCRIPT = """
local f = io.open(os.getenv("BODY_FILE"), "rb"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE")
if os.getenv("HEADER_NAME") then wrk.headers[os.getenv("HEADER_NAME")] = os.getenv("HEADER_VALUE") end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


EXPLAIN_PASSES = 65  # Images through the model per explanation at the default IMGCLF_EXPLAIN_GRID of 8.


def sample_jpeg() -> bytes:
    data_dir = Path(os.environ.get("IMGCLF_DATA_DIR", ROOT.parent / "shared" / "data"))
    archives = list(data_dir.glob("tiny-imagenet-200*.zip")) if data_dir.is_dir() else []
    if archives:
        with zipfile.ZipFile(archives[0]) as opened:
            name = next(n for n in opened.namelist() if n.endswith(".JPEG") and "/val/" in n)
            return opened.read(name)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def in_process(model: str, jpeg: bytes, seconds: float, onnx_file: str = "model.onnx") -> dict:
    import bentoml
    import onnxruntime

    from serving.core import explain
    from serving.core.settings import Settings
    from training.interface.preprocessing import load_image

    stored = bentoml.models.get(model)
    size = tuple(stored.info.metadata["input_size"])
    session = onnxruntime.InferenceSession(os.path.join(stored.path, onnx_file), providers=["CPUExecutionProvider"])
    rates = {}
    for batch in (1, 32):
        images, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            pixels = np.stack([load_image(jpeg, size) for _ in range(batch)]).astype(np.float32)
            session.run(None, {"pixels": pixels})
            images += batch
        rates[batch] = images / (time.perf_counter() - start)
    # One explanation: decode + resize, the occluded copies (serving.core.explain), one model run
    # in chunks of 64 as the service's queue would (its IMGCLF_MAX_BATCH), the heatmap.
    method = explain.Occlusion.for_input(size, Settings().explain_grid)
    explained, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = method.batch(load_image(jpeg, size).astype(np.float32))
        answers = np.concatenate([session.run(None, {"pixels": batch[i : i + 64]})[0] for i in range(0, len(batch), 64)])
        method.heatmap(answers, int(np.argmax(answers[0])))
        explained += 1
    rates["explain"] = explained / (time.perf_counter() - start)
    rates["explain_passes"] = method.passes
    return rates


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, target: str, env: dict, cwd: Path):
        self.port, self.grpc_port = free_port(), free_port()
        environment = {**os.environ, "IMGCLF_GRPC_PORT": str(self.grpc_port), **env}
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", target, "--port", str(self.port)],
            cwd=cwd,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{target} exited: see {self.log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    time.sleep(1)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{target} did not become ready: see {self.log.name}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def wrk(
    url: str, body: bytes, content_type: str, concurrency: int, seconds: float, images_per_request: int = 1, header: tuple[str, str] | None = None
) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "body").write_bytes(body)
        (Path(scratch) / "post.lua").write_text(WRK_SCRIPT)
        env = {**os.environ, "BODY_FILE": str(Path(scratch) / "body"), "CONTENT_TYPE": content_type}
        if header:
            env.update(HEADER_NAME=header[0], HEADER_VALUE=header[1])
        result = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(concurrency, 2)),
                "-c",
                str(concurrency),
                "-d",
                f"{seconds:g}s",
                "--timeout",
                "30s",
                "-s",
                str(Path(scratch) / "post.lua"),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    requests, duration, p50, p99, socket_errors, status_errors = (int(v) for v in line.split()[1:])
    rate = requests / (duration / 1e6)
    return {
        "requests_per_s": rate,
        "images_per_s": rate * images_per_request,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": socket_errors + status_errors,
    }


def grpc_load(target: str, model: str, jpeg: bytes, concurrency: int, seconds: float) -> dict:
    import grpc

    from protos.imgclf.v1 import classifier_pb2 as pb
    from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc

    latencies, errors = [], 0

    async def worker(stub, stop_at):
        nonlocal errors
        request = pb.ClassifyRequest(model_spec=pb.ModelSpec(name=model), images=[jpeg], top_k=5)
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                await stub.Classify(request, timeout=30)
                latencies.append(time.perf_counter() - start)
            except grpc.RpcError:
                errors += 1

    async def main():
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.ClassifierServiceStub(channel)
            start = time.perf_counter()
            await asyncio.gather(*[worker(stub, start + seconds) for _ in range(concurrency)])
            return time.perf_counter() - start

    elapsed = asyncio.run(main())
    rate = len(latencies) / elapsed
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    return {"requests_per_s": rate, "images_per_s": rate, "p50_ms": quantiles[49] * 1000, "p99_ms": quantiles[98] * 1000, "errors": errors}


def grpc_errors(http_url: str, model: str, protocol: str = "grpc") -> int:
    """The server's count of gRPC requests for `model` that failed (from /metrics).

    Calls cancelled by the client are left out: h2load cancels the calls in flight when its time is up."""
    import httpx

    text = httpx.get(f"{http_url}/metrics", timeout=10).text
    pattern = re.compile(r"^imgclf_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    total = 0
    for line in text.splitlines():
        match = pattern.match(line)
        if (
            match
            and f'model="{model}"' in match["labels"]
            and f'protocol="{protocol}"' in match["labels"]
            and not re.search(r'outcome="(ok|cancelled)"', match["labels"])
        ):
            total += int(float(match["value"]))
    return total


def classify_message(model: str, jpeg: bytes) -> tuple[bytes, str, str]:
    """(request bytes, method path, metrics protocol) of an imgclf.v1 Classify call, top 5."""
    from protos.imgclf.v1 import classifier_pb2 as pb

    message = pb.ClassifyRequest(model_spec=pb.ModelSpec(name=model), images=[jpeg], top_k=5)
    return message.SerializeToString(), "/imgclf.v1.ClassifierService/Classify", "grpc"


def model_infer_message(model: str, jpeg: bytes) -> tuple[bytes, str, str]:
    """The same as a v2 ModelInfer call, as tritonclient sends it (raw_input_contents), top 5 by
    the classification extension."""
    from serving.grpc.proto_pool import message

    request = message("inference.ModelInferRequest")(
        model_name=model,
        inputs=[{"name": "images", "datatype": "BYTES", "shape": [1]}],
        outputs=[{"name": "probabilities", "parameters": {"classification": {"int64_param": 5}}}],
        raw_input_contents=[struct.pack("<I", len(jpeg)) + jpeg],
    )
    return request.SerializeToString(), "/inference.GRPCInferenceService/ModelInfer", "v2-grpc"


def v2_http_body(jpeg: bytes) -> tuple[bytes, tuple[str, str]]:
    """A v2 infer body in the binary tensor extension (tritonclient.http's default), top 5."""
    header = json.dumps(
        {
            "inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(jpeg) + 4}}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 5, "binary_data": False}}],
        }
    ).encode()
    return header + struct.pack("<I", len(jpeg)) + jpeg, ("Inference-Header-Content-Length", str(len(header)))


def h2load_grpc(target: str, http_url: str, model: str, jpeg: bytes, concurrency: int, seconds: float, call=classify_message) -> dict:
    """gRPC calls sent by h2load as gRPC frames (one 5-byte-prefixed request per stream)."""
    message, method, protocol = call(model, jpeg)
    errors_before = grpc_errors(http_url, model, protocol)
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "request"
        body.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
        result = subprocess.run(
            [
                "h2load",
                "-n",
                "100000000",
                "-D",
                f"{seconds:g}",
                "-c",
                str(concurrency),
                "-m",
                "1",
                "-d",
                str(body),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                f"http://{target}{method}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    out = result.stdout
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    finished = re.search(r"finished in ([\d.]+)s", out)
    request_time = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not (counts and finished):
        raise RuntimeError(f"h2load failed:\n{out}\n{result.stderr}")
    succeeded, failed = int(counts[3]), int(counts[4]) + int(counts[5]) + int(counts[6])
    errors = failed + grpc_errors(http_url, model, protocol) - errors_before
    rate = succeeded / float(finished[1])
    # h2load prints the mean, not percentiles; the p50 column holds the mean for these rows.
    mean = float(request_time[1].rstrip("ums")) / (1000 if request_time[1].endswith("us") else 1) if request_time else float("nan")
    return {"requests_per_s": rate, "images_per_s": rate, "p50_ms": mean, "p99_ms": float("nan"), "errors": errors}


def multipart(jpeg: bytes, field: str = "image") -> tuple[bytes, str]:
    boundary = "imgclfbenchboundary"
    body = (
        (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode()
        + jpeg
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def monitoring_overhead(model: str, jpeg: bytes, concurrency: list[int], seconds: float, rounds: int) -> int:
    """The service with IMGCLF_MONITORING=1 and =0, both started, timed in turn (the order swapped
    each round so that both see the machine's drift alike): HTTP single images at each concurrency.
    Prints the median rates and their ratio; the target is monitoring on within 5% of off."""
    servers = {flag: Server("serving.service:Classifier", {"IMGCLF_MODELS": model, "IMGCLF_MONITORING": flag}, ROOT) for flag in ("1", "0")}
    rates: dict[tuple[str, int], list[float]] = {}
    try:
        for round_index in range(rounds):
            order = ("1", "0") if round_index % 2 == 0 else ("0", "1")
            for c in concurrency:
                for flag in order:
                    url = f"http://127.0.0.1:{servers[flag].port}/classify?model={model}"
                    rates.setdefault((flag, c), []).append(wrk(url, jpeg, "image/jpeg", c, seconds)["requests_per_s"])
    finally:
        for server in servers.values():
            server.stop()
    print(f"\nmodel {model}, HTTP single 64x64 JPEGs, {rounds} rounds of {seconds:.0f} s per cell, alternating, {os.cpu_count()} CPUs")
    print(f"{'conc':>4} {'monitoring on':>14} {'off':>9} {'on / off':>9}  rounds (on | off)")
    worst = float("inf")
    for c in concurrency:
        on, off = statistics.median(rates[("1", c)]), statistics.median(rates[("0", c)])
        worst = min(worst, on / off)
        each = " | ".join(" ".join(f"{r:.0f}" for r in rates[(flag, c)]) for flag in ("1", "0"))
        print(f"{c:>4} {on:>14.1f} {off:>9.1f} {on / off:>9.3f}  {each}")
    print(f"monitoring on / off, worst concurrency: {worst:.3f} (target >= 0.95: {'met' if worst >= 0.95 else 'NOT met'})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tinyimagenet-cnn")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-keras", action="store_true", help="leave out the (slow) Keras baseline")
    parser.add_argument("--compare-batching", action="store_true", help="also run the service with IMGCLF_BATCHING=0")
    parser.add_argument(
        "--int8", action="store_true", help="the model's int8 variant beside its float model: in-process and the service, IMGCLF_PREFER_INT8=0 and 1"
    )
    parser.add_argument("--skip-baselines", action="store_true", help="leave out both BentoML baselines")
    parser.add_argument(
        "--service-env", action="append", default=[], metavar="K=V[,K=V]", help="also run the service with these environment settings (repeatable)"
    )
    parser.add_argument(
        "--monitoring-overhead",
        type=int,
        metavar="ROUNDS",
        help="only compare the service with IMGCLF_MONITORING=1 and 0, alternating, for ROUNDS rounds",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk (make bench does it)", file=sys.stderr)
        return 2
    jpeg = sample_jpeg()
    if args.monitoring_overhead:
        return monitoring_overhead(args.model, jpeg, args.concurrency, args.duration, args.monitoring_overhead)
    rows = []
    ceilings = [("in-process", "model.onnx")] + ([("in-process int8", "model.int8.onnx")] if args.int8 else [])
    for label, onnx_file in ceilings:
        rates = in_process(args.model, jpeg, args.duration / 2, onnx_file)
        for batch in (1, 32):
            rate = rates[batch]
            timing = {"p50_ms": 1000 * batch / rate, "p99_ms": float("nan"), "errors": 0}
            rows.append((label, f"batch {batch}", "-", {"requests_per_s": rate / batch, "images_per_s": rate, **timing}))
        rate, passes = rates["explain"], rates["explain_passes"]
        timing = {"p50_ms": 1000 / rate, "p99_ms": float("nan"), "errors": 0}
        rows.append((label, "explain", "-", {"requests_per_s": rate, "images_per_s": rate * passes, **timing}))

    variants = [("service", {"IMGCLF_PREFER_INT8": "0"} if args.int8 else {})]
    variants += [("service int8", {"IMGCLF_PREFER_INT8": "1"})] if args.int8 else []
    variants += [("service nobatch", {"IMGCLF_BATCHING": "0"})] if args.compare_batching else []
    variants += [(f"service {i + 1}", dict(item.split("=", 1) for item in spec.split(",") if item)) for i, spec in enumerate(args.service_env)]
    use_h2load = shutil.which("h2load") is not None
    for label, extra in variants:
        service = Server("serving.service:Classifier", {"IMGCLF_MODELS": args.model, **extra}, ROOT)
        try:
            url = f"http://127.0.0.1:{service.port}/classify?model={args.model}"
            v2_url = f"http://127.0.0.1:{service.port}/v2/models/{args.model}/infer"
            v2_body, v2_header = v2_http_body(jpeg)
            for c in args.concurrency:  # imgclf.v1 and v2 side by side, so that drift hits both alike.
                rows.append((label, "HTTP 1 image", c, wrk(url, jpeg, "image/jpeg", c, args.duration)))
                rows.append((label, "HTTP v2 1 image", c, wrk(v2_url, v2_body, "application/octet-stream", c, args.duration, header=v2_header)))
            for c in args.concurrency:
                target = f"127.0.0.1:{service.grpc_port}"
                if use_h2load:
                    http_url = f"http://127.0.0.1:{service.port}"
                    rows.append((label, "gRPC 1 image", c, h2load_grpc(target, http_url, args.model, jpeg, c, args.duration)))
                    v2 = h2load_grpc(target, http_url, args.model, jpeg, c, args.duration, call=model_infer_message)
                    rows.append((label, "gRPC v2 1 image", c, v2))
                else:
                    rows.append((label, "gRPC 1 image", c, grpc_load(target, args.model, jpeg, c, args.duration)))
            batch = json.dumps({"images": [base64.b64encode(jpeg).decode()] * 32, "model": args.model}).encode()
            for c in args.concurrency:
                rows.append((label, "HTTP 32 images", c, wrk(url, batch, "application/json", c, args.duration, 32)))
            explain_url = f"http://127.0.0.1:{service.port}/explain?model={args.model}"
            for c in args.concurrency:  # images/s: the model's images (each explanation runs grid * grid + 1).
                rows.append((label, "HTTP explain", c, wrk(explain_url, jpeg, "image/jpeg", c, args.duration, EXPLAIN_PASSES)))
        finally:
            service.stop()
    baselines = [("onnx", "onnx_service:OnnxBaseline")] + ([] if args.skip_keras else [("keras", "keras_service:KerasBaseline")])
    baselines = [] if args.skip_baselines else baselines
    body, content_type = multipart(jpeg)
    for label, target in baselines:
        server = Server(target, {"BASELINE_MODEL": f"{args.model}:latest"}, ROOT / "benchmarks" / "baselines")
        try:
            for c in args.concurrency:
                rows.append(
                    (f"baseline {label}", "HTTP 1 image", c, wrk(f"http://127.0.0.1:{server.port}/classify", body, content_type, c, args.duration))
                )
        finally:
            server.stop()

    for label, env in variants[1:]:
        print(f"{label}: {env}")
    print(f"\nmodel {args.model}, one {len(jpeg)}-byte 64x64 JPEG per image, {args.duration:.0f} s per cell, {os.cpu_count()} CPUs")
    print(f"{'target':<16} {'request':<15} {'conc':>4} {'req/s':>9} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for target, kind, c, r in rows:
        rates = f"{r['requests_per_s']:>9.1f} {r['images_per_s']:>9.1f}"
        print(f"{target:<16} {kind:<15} {c!s:>4} {rates} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
