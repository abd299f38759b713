"""The BentoML service: `bentoml serve` (from the repository root, or a built bento) starts it.

Each API worker loads the configured models from the BentoML store once (`serving.repository`),
warms them up, and serves the HTTP routes of `serving.http_api` (mounted at /) next to
BentoML's own /healthz, /livez, /readyz and /metrics. Limits and options: `serving.settings`.
"""

from __future__ import annotations

import logging
import os

import bentoml

from serving.http_api import app
from serving.repository import ModelRepository
from serving.settings import Settings
from serving.state import ServiceState, install

log = logging.getLogger("imgclf.serving")


@bentoml.service(name="imgclf", workers=int(os.environ.get("IMGCLF_WORKERS", "1")), traffic={"timeout": 60})
@bentoml.asgi_app(app, path="/")
class Classifier:
    def __init__(self) -> None:
        settings = Settings.from_env()
        self.state = ServiceState(settings, ModelRepository.from_store(settings))
        install(self.state)
        log.info("serving %s (default %s)", ", ".join(self.state.repository.models), self.state.repository.default)
