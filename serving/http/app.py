"""The HTTP front door: every route of every protocol, in one ASGI app that the BentoML service
mounts at / (beside its own /healthz, /livez, /readyz and /metrics).

    imgclf's own API (imgclf.py):
    POST /classify          images (multipart files, JSON base64, or a raw image body) -> top-k classes
    POST /predict           raw pixel arrays (JSON) -> probabilities
    POST /explain           one image (as for /classify) -> the heatmap of what a class depends on
    POST /feedback          an image (or a recent request_id) and its correct label -> stored for retraining
    GET  /models            the served models
    GET  /models/{name}     one model: versions, input size, labels, preprocessing, metrics
    POST /admin/reload      look in the model store for new versions now
    GET  /ui                the browser page (serving/ui/index.html), which calls the routes above
    TensorFlow Serving's REST API (tf_serving.py):
    POST /v1/models/{name}[/versions/{v}]:predict, GET /v1/models/{name}[/versions/{v}][/metadata]
    The Open Inference Protocol v2 (KServe, Triton; open_inference.py):
    GET /v2, /v2/health/{live,ready}, /v2/models/{name}[/versions/{v}][/ready], POST .../infer,
    GET /v2/models[/{name}[/versions/{v}]]/stats (the statistics extension)
    GET  /openapi.json      all of the above as an OpenAPI 3.1 document (openapi.py); /docs renders it

Every handler takes ``(request, state)``. `guarded` routes check the API token and set the
request's deadline (`serving.core.guards`); the page, the documents and the v2 health routes are
open. Errors are ``{"error": message}`` with the status `serving.core.errors` gives each error.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from serving.http import imgclf, open_inference, openapi, tf_serving
from serving.http.common import guarded, open_route

V2 = open_inference.PROTOCOL


def _v2_model_routes(prefix: str) -> list[Route]:
    return [
        Route(prefix, guarded(open_inference.model_metadata, V2), methods=["GET"]),
        Route(f"{prefix}/ready", guarded(open_inference.model_ready, V2), methods=["GET"]),
        Route(f"{prefix}/stats", guarded(open_inference.model_statistics, V2), methods=["GET"]),
        Route(f"{prefix}/infer", guarded(open_inference.infer, V2), methods=["POST"]),
    ]


app = Starlette(
    routes=[
        Route("/classify", guarded(imgclf.classify), methods=["POST"]),
        Route("/predict", guarded(imgclf.predict), methods=["POST"]),
        Route("/explain", guarded(imgclf.explain), methods=["POST"]),
        Route("/feedback", guarded(imgclf.feedback), methods=["POST"]),
        Route("/models", guarded(imgclf.list_models), methods=["GET"]),
        Route("/models/{name}", guarded(imgclf.get_model), methods=["GET"]),
        Route("/admin/reload", guarded(imgclf.reload_models), methods=["POST"]),
        Route("/ui", open_route(imgclf.page), methods=["GET"]),
        Route("/ui/", open_route(imgclf.page), methods=["GET"]),
        Route("/v1/models/{rest:path}", guarded(tf_serving.handle), methods=["GET", "POST"]),
        Route("/v2", guarded(open_inference.server_metadata, V2), methods=["GET"]),
        Route("/v2/health/live", open_route(open_inference.live), methods=["GET"]),
        Route("/v2/health/ready", open_route(open_inference.ready), methods=["GET"]),
        Route("/v2/models/stats", guarded(open_inference.model_statistics, V2), methods=["GET"]),
        *_v2_model_routes("/v2/models/{name}"),
        *_v2_model_routes("/v2/models/{name}/versions/{version}"),
        Route("/openapi.json", open_route(openapi.openapi_json), methods=["GET"]),
        Route("/docs", open_route(openapi.docs), methods=["GET"]),
        Route("/docs/assets/{file}", open_route(openapi.docs_asset), methods=["GET"]),
    ]
)
