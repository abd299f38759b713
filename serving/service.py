"""The BentoML service: `bentoml serve` (from the repository root, or a built bento) starts it.

Each API worker loads the configured models from the BentoML store once (`serving.core.repository`),
warms them up, serves the HTTP routes of `serving.http.imgclf` (mounted at /) next to BentoML's
own /healthz, /livez, /readyz and /metrics, and runs the gRPC server of `serving.grpc.server`
on its event loop (one port for all workers). Limits and options: `serving.core.settings`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys

import bentoml

from serving.core.errors import ServingError
from serving.core.repository import ModelRepository
from serving.core.settings import Settings
from serving.core.state import ServiceState
from serving.http.app import app
from serving.http.common import install
from serving.startup import CLOCK

log = logging.getLogger("imgclf.serving")
# BentoML shows its own loggers at INFO; ours (model loads, start-up times) join them.
logging.getLogger("imgclf").setLevel(logging.INFO)


def _framework_config(settings: Settings) -> dict:
    """BentoML's per-request extras, off unless asked for: each one costs throughput (docs/serving.md);
    TLS for HTTP when a certificate is configured."""
    config: dict = {}
    if settings.tls:
        config["ssl"] = {"enabled": True, "certfile": settings.tls_cert_file, "keyfile": settings.tls_key_file}
    if not settings.access_log:
        config["logging"] = {"access": {"enabled": False}}
    if not settings.tracing:
        # OpenTelemetry's middleware stays in the stack but returns at once for every URL.
        config["tracing"] = {"excluded_urls": [".*"]}
    return config


def _settings_or_exit() -> Settings:
    """The settings, checked with the named models against the store. A bad value stops `bentoml
    serve` here, in its first process, with one line naming the variable and exit status 2 (a
    worker failing instead would be restarted in a loop, and BentoML rewords import errors)."""
    try:
        settings = Settings.from_env()
        if settings.models:
            ModelRepository.configured(settings)
        return settings
    except (ValueError, ServingError) as error:
        print(f"imgclf: cannot start: {getattr(error, 'message', error)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


SETTINGS = _settings_or_exit()
CLOCK.mark("imports")


@bentoml.service(name="imgclf", workers=SETTINGS.workers, traffic={"timeout": 60}, **_framework_config(SETTINGS))
@bentoml.asgi_app(app, path="/")
class Classifier:
    def __init__(self) -> None:
        settings = SETTINGS
        if not settings.models and Classifier.bento is not None:
            # Served from a built bento: the models its bentofile named (and that it carries).
            settings = dataclasses.replace(settings, models=tuple(str(model.tag) for model in Classifier.bento.info.models))
        self.state = ServiceState(settings, ModelRepository.from_store(settings))
        CLOCK.mark("models (load and warm-up)")
        install(app, self.state)
        self.grpc_server = None
        self.poller = None
        self.draining: asyncio.Task | None = None
        log.info("serving %s (default %s)", ", ".join(self.state.repository.models), self.state.repository.default)

    @bentoml.on_startup
    async def start(self) -> None:
        from serving.grpc import server as grpc_server

        self.grpc_server = await grpc_server.start(self.state, self.state.settings.grpc_port)
        self.poller = asyncio.get_running_loop().create_task(self.state.poll_models())
        self._chain_sigterm()
        CLOCK.mark("gRPC server")
        log.info("%s", CLOCK.summary())

    def _chain_sigterm(self) -> None:
        """On SIGTERM, before uvicorn's own handler stops HTTP: refuse new work on both protocols
        (503 / UNAVAILABLE), report not ready, and let accepted gRPC calls finish within the grace."""
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(number, frame):
            loop.call_soon_threadsafe(self.drain)
            if callable(previous):
                previous(number, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def drain(self) -> asyncio.Task:
        """Starts draining once; returns the task that ends when accepted gRPC calls have."""
        if self.draining is None:
            self.state.draining = True
            self.draining = asyncio.get_running_loop().create_task(self._drain())
        return self.draining

    async def _drain(self) -> None:
        log.info("SIGTERM: draining %d requests in progress (grace %.0f s)", self.state.in_progress(), self.state.settings.shutdown_grace_s)
        if self.grpc_server is not None:
            from grpc_health.v1 import health_pb2

            for name in self.grpc_server.service_names:
                await self.grpc_server.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            await self.grpc_server.stop(grace=self.state.settings.shutdown_grace_s)

    async def __is_ready__(self) -> bool:
        return not self.state.draining

    @bentoml.on_shutdown
    async def stop(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        await self.drain()
        # Accepted HTTP requests have finished (uvicorn waits for them before this hook); gRPC ones too.
