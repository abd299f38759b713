"""In-process fixtures: the service's real request path (routes, servicers, batching, guards) over a
tiny real ONNX model, with no training and no `bentoml serve` (those are the live tests' business:
the session's `server` fixture in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import threading

import grpc
import numpy as np
import pytest
from PIL import Image

from serving.core.repository import ModelRepository, load_version
from serving.core.settings import Settings
from serving.core.state import ServiceState
from serving.grpc import server as grpc_server
from serving.http.app import app
from serving.http.common import install
from tests.tiny_model import write_version

TOKEN = "a-test-token-0123456789"


@dataclasses.dataclass
class Gate:
    """Holds every model call until opened; counts the calls that reached the model."""

    entered: threading.Event = dataclasses.field(default_factory=threading.Event)
    opened: threading.Event = dataclasses.field(default_factory=threading.Event)
    calls: int = 0

    def wrap(self, run):
        def gated(pixels):
            self.calls += 1
            self.entered.set()
            assert self.opened.wait(10), "the gate was never opened"
            return run(pixels)

        return gated


@pytest.fixture
def make_state(tmp_path):
    """``make_state(**settings)``: a worker's state serving the tiny model ``tiny`` version 1, handed to
    the HTTP app (and kept as ``make_state.current``); ``gate=True`` puts a `Gate` in front of the
    model (``state.gate``); ``model_args`` go to `write_version` (``size``, ``region``)."""

    def make(gate: bool = False, model_args: dict | None = None, **overrides) -> ServiceState:
        settings = Settings(**{"poll_seconds": 0, "workers": 1, **overrides})
        path, card = write_version(tmp_path / "tiny" / "1", **(model_args or {}))
        model = load_version("tiny", 1, path, card, settings)
        state = ServiceState(settings, ModelRepository({"tiny": {1: model}}, "tiny", settings))
        if gate:
            state.gate = Gate()
            model.run = state.gate.wrap(model.run)
            if model.run_alone is not None:
                model.run_alone = state.gate.wrap(model.run_alone)
        install(app, state)
        make.current = state
        return state

    yield make
    install(app, None)


@pytest.fixture
def http(make_state):
    """A Starlette TestClient on the HTTP routes, over the default settings."""
    from starlette.testclient import TestClient

    make_state()
    with TestClient(app) as client:
        yield client


def run_with_grpc(state: ServiceState, body):
    """Starts the worker's gRPC server (every service) on a free port in this process, runs
    ``await body(channel)`` against it, stops it; returns what ``body`` returned."""

    async def main():
        server = await grpc_server.start(state, 0)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                return await body(channel)
        finally:
            await server.stop(None)

    return asyncio.run(main())


def encoded(picture: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, fmt)
    return buffer.getvalue()


@contextlib.contextmanager
def opened_later(gate: Gate, seconds: float):
    """Opens ``gate`` after ``seconds`` from a timer thread (and in any case on exit)."""
    timer = threading.Timer(seconds, gate.opened.set)
    timer.start()
    try:
        yield
    finally:
        gate.opened.set()
        timer.cancel()
