"""The BentoML service: `bentoml serve` (from the repository root, or a built bento) starts it.

Each API worker loads the configured models from the BentoML store once (`serving.repository`),
warms them up, serves the HTTP routes of `serving.http_api` (mounted at /) next to BentoML's
own /healthz, /livez, /readyz and /metrics, and runs the gRPC server of `serving.grpc_server`
on its event loop (one port for all workers). Limits and options: `serving.settings`.
"""

from __future__ import annotations

import dataclasses
import logging

import bentoml

from serving.http_api import app
from serving.repository import ModelRepository
from serving.settings import Settings
from serving.state import ServiceState, install

log = logging.getLogger("imgclf.serving")


def _framework_config(settings: Settings) -> dict:
    """BentoML's per-request extras, off unless asked for: each one costs throughput (see README)."""
    config: dict = {}
    if not settings.access_log:
        config["logging"] = {"access": {"enabled": False}}
    if not settings.tracing:
        # OpenTelemetry's middleware stays in the stack but returns at once for every URL.
        config["tracing"] = {"excluded_urls": [".*"]}
    return config


SETTINGS = Settings.from_env()


@bentoml.service(name="imgclf", workers=SETTINGS.workers, traffic={"timeout": 60}, **_framework_config(SETTINGS))
@bentoml.asgi_app(app, path="/")
class Classifier:
    def __init__(self) -> None:
        settings = SETTINGS
        if not settings.models and Classifier.bento is not None:
            # Served from a built bento: the models its bentofile named (and that it carries).
            settings = dataclasses.replace(settings, models=tuple(str(model.tag) for model in Classifier.bento.info.models))
        self.state = ServiceState(settings, ModelRepository.from_store(settings))
        install(self.state)
        self.grpc_server = None
        log.info("serving %s (default %s)", ", ".join(self.state.repository.models), self.state.repository.default)

    @bentoml.on_startup
    async def start_grpc(self) -> None:
        from serving import grpc_server

        self.grpc_server = await grpc_server.start(self.state, self.state.settings.grpc_port)

    @bentoml.on_shutdown
    async def stop_grpc(self) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=5)
