"""Load benchmark of the prediction service against two BentoML baselines (not part of the suite).

    python benchmarks/serving_load.py [--model tinyimagenet-cnn] [--duration 10] [--concurrency 1 8 32]

Runs, in one go on this machine, with one 64x64 JPEG per request (a real Tiny ImageNet
validation image when $IMGCLF_DATA_DIR has the zip):

* in-process: decode + resize + ONNX Runtime in one loop, batch 1 and batch 32 (the ceiling);
* the project's service (`serving.service:Classifier`): HTTP single images and 32-image batches
  (wrk), gRPC single images (an asyncio client);
* baseline "onnx": ONNX Runtime in a BentoML API worker, no batching (baselines/onnx_service.py);
* baseline "keras": a BentoML-tutorial service calling Keras predict per request (baselines/keras_service.py).

Prints requests/s, images/s, p50/p99 latency and errors per concurrency. Needs `wrk`
(`apt-get install wrk`; `make bench` installs it) and the model in the BentoML store.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import statistics
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
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


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


def in_process(model: str, jpeg: bytes, seconds: float) -> dict:
    import bentoml
    import onnxruntime

    from training.preprocessing import load_image

    stored = bentoml.models.get(model)
    size = tuple(stored.info.metadata["input_size"])
    session = onnxruntime.InferenceSession(os.path.join(stored.path, "model.onnx"), providers=["CPUExecutionProvider"])
    rates = {}
    for batch in (1, 32):
        images, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            pixels = np.stack([load_image(jpeg, size) for _ in range(batch)]).astype(np.float32)
            session.run(None, {"pixels": pixels})
            images += batch
        rates[batch] = images / (time.perf_counter() - start)
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
        self.process = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", target, "--port", str(self.port)],
                                        cwd=cwd, env=environment, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
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


def wrk(url: str, body: bytes, content_type: str, concurrency: int, seconds: float, images_per_request: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "body").write_bytes(body)
        (Path(scratch) / "post.lua").write_text(WRK_SCRIPT)
        env = {**os.environ, "BODY_FILE": str(Path(scratch) / "body"), "CONTENT_TYPE": content_type}
        result = subprocess.run(["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{seconds:g}s",
                                 "--timeout", "30s", "-s", str(Path(scratch) / "post.lua"), url],
                                env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((line for line in result.stdout.splitlines() if line.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    requests, duration, p50, p99, socket_errors, status_errors = (int(v) for v in line.split()[1:])
    rate = requests / (duration / 1e6)
    return {"requests_per_s": rate, "images_per_s": rate * images_per_request, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "errors": socket_errors + status_errors}


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


def multipart(jpeg: bytes, field: str = "image") -> tuple[bytes, str]:
    boundary = "imgclfbenchboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tinyimagenet-cnn")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-keras", action="store_true", help="leave out the (slow) Keras baseline")
    parser.add_argument("--compare-batching", action="store_true", help="also run the service with IMGCLF_BATCHING=0")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk (make bench does it)", file=sys.stderr)
        return 2
    jpeg = sample_jpeg()
    rows = []
    rates = in_process(args.model, jpeg, args.duration / 2)
    rows.append(("in-process", "batch 1", "-", {"requests_per_s": rates[1], "images_per_s": rates[1], "p50_ms": 1000 / rates[1], "p99_ms": float("nan"), "errors": 0}))
    rows.append(("in-process", "batch 32", "-", {"requests_per_s": rates[32] / 32, "images_per_s": rates[32], "p50_ms": 32000 / rates[32], "p99_ms": float("nan"), "errors": 0}))

    variants = [("service", {})] + ([("service nobatch", {"IMGCLF_BATCHING": "0"})] if args.compare_batching else [])
    for label, extra in variants:
        service = Server("serving.service:Classifier", {"IMGCLF_MODELS": args.model, **extra}, ROOT)
        try:
            url = f"http://127.0.0.1:{service.port}/classify?model={args.model}"
            for c in args.concurrency:
                rows.append((label, "HTTP 1 image", c, wrk(url, jpeg, "image/jpeg", c, args.duration)))
            for c in args.concurrency:
                rows.append((label, "gRPC 1 image", c, grpc_load(f"127.0.0.1:{service.grpc_port}", args.model, jpeg, c, args.duration)))
            batch = json.dumps({"images": [base64.b64encode(jpeg).decode()] * 32, "model": args.model}).encode()
            for c in args.concurrency:
                rows.append((label, "HTTP 32 images", c, wrk(url, batch, "application/json", c, args.duration, 32)))
        finally:
            service.stop()
    baselines = [("onnx", "onnx_service:OnnxBaseline")] + ([] if args.skip_keras else [("keras", "keras_service:KerasBaseline")])
    body, content_type = multipart(jpeg)
    for label, target in baselines:
        server = Server(target, {"BASELINE_MODEL": f"{args.model}:latest"}, ROOT / "benchmarks" / "baselines")
        try:
            for c in args.concurrency:
                rows.append((f"baseline {label}", "HTTP 1 image", c, wrk(f"http://127.0.0.1:{server.port}/classify", body, content_type, c, args.duration)))
        finally:
            server.stop()

    print(f"\nmodel {args.model}, one {len(jpeg)}-byte 64x64 JPEG per image, {args.duration:.0f} s per cell, {os.cpu_count()} CPUs")
    print(f"{'target':<16} {'request':<15} {'conc':>4} {'req/s':>9} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for target, kind, c, r in rows:
        print(f"{target:<16} {kind:<15} {c!s:>4} {r['requests_per_s']:>9.1f} {r['images_per_s']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
