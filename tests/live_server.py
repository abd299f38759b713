"""Starting and stopping a real `bentoml serve` on free ports (the session's `server` fixture lives in
tests/conftest.py; some tests start servers of their own)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx

from tests.conftest import ROOT

SERVED = ("digits-cnn", "tinyimagenet-cnn")
LIMITS = {"IMGCLF_MAX_BATCH": "16", "IMGCLF_MAX_BODY_BYTES": str(2 * 1024 * 1024), "IMGCLF_MAX_IMAGE_PIXELS": str(4_000_000)}


@dataclasses.dataclass
class Server:
    http: str
    grpc: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    tmp: Path,
    env: dict,
    timeout: float = 180,
    target: str = "serving.service:Classifier",
    cwd: Path = ROOT,
    base_env: dict | None = None,
    ready=None,
    python: str = sys.executable,
) -> Server:
    """Starts `bentoml serve` (with ``python``'s BentoML) and waits until ``ready(http_url, grpc_target)``
    (default: /readyz, /models and the gRPC health check answer over plain connections).

    Two servers running at once need different BENTOML_HOMEs: BentoML keeps the workers' metric
    files in BENTOML_HOME/prometheus_multiproc_dir and clears that folder when a server starts."""
    http_port, grpc_port = free_port(), free_port()
    log = tmp / "server.log"
    environment = {**(os.environ if base_env is None else base_env), "TF_CPP_MIN_LOG_LEVEL": "2", "IMGCLF_GRPC_PORT": str(grpc_port), **env}
    process = subprocess.Popen(
        [python, "-m", "bentoml", "serve", target, "--port", str(http_port)],
        cwd=cwd,
        env=environment,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{server.output()}")
        try:
            if (ready or _plain_ready)(server.http, server.grpc):
                return server
        except (httpx.HTTPError, grpc.RpcError, OSError):
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"the server did not become ready in {timeout} s:\n{server.output()}")


def _plain_ready(http: str, grpc_target: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if httpx.get(f"{http}/readyz", timeout=2).status_code != 200 or httpx.get(f"{http}/models", timeout=2).status_code != 200:
        return False
    with grpc.insecure_channel(grpc_target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
    return status == health_pb2.HealthCheckResponse.SERVING


def stop_server(server: Server, sig: int = signal.SIGTERM) -> None:
    """Stops the server and every worker it started (they run in process groups of their own)."""
    import psutil

    try:
        family = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if server.process.poll() is None:
        os.killpg(server.process.pid, sig)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
