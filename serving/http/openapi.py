"""The HTTP API as an OpenAPI 3.1 document (``GET /openapi.json``) and the page that renders it
(``GET /docs``: Swagger UI, from the copy BentoML's package ships, so it works offline). The body
schemas are generated from `serving.http.schemas`' typed models, the error responses from
`serving.core.errors`' table.

Every route of `serving.http.imgclf.app` is described here; tests/serving/test_openapi.py checks that
the two list the same operations (so neither can drift), validates the document, and runs
schemathesis against a live server from it. BentoML's own health and metrics routes, which sit
beside the app, are described too.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from serving.core.errors import http_statuses
from serving.core.state import ServiceState
from serving.http import schemas
from serving.http.schemas import EXAMPLE_PNG
from serving.protocols import open_inference
from training.interface.contract import INPUT_NAME, OUTPUT_NAME

JSON = "application/json"
# What a model name and a version look like in a path (exported names are such; versions are numbers).
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "a version number"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, example=None) -> dict:
    return {JSON: {"schema": schema, **({"example": example} if example is not None else {})}}


def _responses(ok: dict, *errors: str, description: str = "OK") -> dict:
    """A 200 answering ``ok``, and each error status of ``errors`` as `serving.core.errors` means it."""
    statuses = http_statuses()
    responses = {"200": {"description": description, "content": ok}}
    for status in errors:
        responses[status] = {"description": statuses[status], "content": _json(_ref("Error"))}
    if "404" in responses:
        # A path no route matches at all (e.g. a name holding a newline, which BentoML's mount at /
        # does not match) gets BentoML's own plain-text 404.
        responses["404"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return responses


def _operation(summary: str, tag: str, responses: dict, **extra) -> dict:
    return {"summary": summary, "tags": [tag], "responses": responses, **extra}


def _open(operation: dict) -> dict:
    """An operation that needs no token."""
    return {**operation, "security": []}


def _text(description: str, media: str = "text/plain") -> dict:
    return {"200": {"description": description, "content": {media: {"schema": {"type": "string"}}}}}


MODEL_QUERY = [
    {"name": "model", "in": "query", "schema": {"type": "string"}, "description": "the model (default: the service's default)"},
    {"name": "version", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "a version number (default: the newest)"},
]


def _tf_serving_paths() -> dict:
    paths = {}
    for prefix, parameters in (("/v1/models/{name}", [NAME]), ("/v1/models/{name}/versions/{version}", [NAME, VERSION])):
        for path, summary, schema in ((prefix, "model status", "TFServingStatus"), (f"{prefix}/metadata", "signatures", "TFServingMetadata")):
            responses = _responses(_json(_ref(schema)), "400", "401", "404")
            paths[path] = {"get": _operation(f"TensorFlow Serving: {summary}", "TensorFlow Serving REST", responses, parameters=parameters)}
        paths[f"{prefix}:predict"] = {
            "post": _operation(
                "TensorFlow Serving: predict",
                "TensorFlow Serving REST",
                _responses(_json(_ref("TFServingPredictResponse")), "400", "401", "404", "413", "503", "504"),
                parameters=parameters,
                requestBody={"required": True, "content": _json(_ref("TFServingPredictRequest"), {"instances": [{"b64": EXAMPLE_PNG}]})},
            )
        }
    return paths


def _v2_paths() -> dict:
    tag = "Open Inference Protocol v2"
    live = {"type": "object", "properties": {"live": {"type": "boolean"}}}
    ready = {"type": "object", "properties": {"ready": {"type": "boolean"}}}
    paths = {
        "/v2": {"get": _operation("Server metadata", tag, _responses(_json(_ref("V2ServerMetadata")), "401"))},
        "/v2/health/live": {"get": _open(_operation("Live", tag, _responses(_json(live))))},
        "/v2/health/ready": {"get": _open(_operation("Ready (503 while loading or shutting down)", tag, _responses(_json(ready), "503")))},
    }
    infer_body = {
        "required": True,
        "content": {
            **_json(
                _ref("V2InferRequest"),
                {
                    "id": "1",
                    "inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": [EXAMPLE_PNG]}],
                    "outputs": [{"name": OUTPUT_NAME, "parameters": {"classification": 3}}],
                },
            ),
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "binary tensor extension: the JSON header (Inference-Header-Content-Length bytes), then each binary input",
                },
            },
        },
    }
    length = {
        "name": "Inference-Header-Content-Length",
        "in": "header",
        "schema": {"type": "integer", "minimum": 0},
        "description": "binary tensor extension: the length of the JSON header at the body's start",
    }
    binary_response = {
        "application/octet-stream": {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "binary tensor extension: the JSON header (Inference-Header-Content-Length bytes), then each binary output",
            },
        }
    }
    paths["/v2/models/stats"] = {"get": _operation("Inference statistics of every served model", tag, _responses(_json(_ref("V2Statistics")), "401"))}
    for prefix, parameters in (("/v2/models/{name}", [NAME]), ("/v2/models/{name}/versions/{version}", [NAME, VERSION])):
        metadata = _responses(_json(_ref("V2ModelMetadata")), "400", "401", "404")
        paths[prefix] = {"get": _operation("Model metadata", tag, metadata, parameters=parameters)}
        model_ready = {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "ready": {"type": "boolean"}}}
        paths[f"{prefix}/ready"] = {"get": _operation("Model ready", tag, _responses(_json(model_ready), "400", "401", "404"), parameters=parameters)}
        paths[f"{prefix}/stats"] = {
            "get": _operation(
                "Inference statistics (the statistics extension)",
                tag,
                _responses(_json(_ref("V2Statistics")), "400", "401", "404"),
                parameters=parameters,
            )
        }
        infer_responses = _responses({**_json(_ref("V2InferResponse")), **binary_response}, "400", "401", "404", "413", "503", "504")
        paths[f"{prefix}/infer"] = {
            "post": _operation("Inference", tag, infer_responses, parameters=[*parameters, length], requestBody=copy.deepcopy(infer_body))
        }
    return paths


def _image_operation(kind: str, summary: str, statuses: tuple[str, ...], option: dict, example: dict) -> dict:
    """An operation that takes images as /classify does (multipart, JSON base64 or a raw image
    body), its ``kind``JSON, ``kind``Multipart and ``kind``Response schemas, and one query ``option``."""
    image_body = {"schema": {"type": "string", "format": "binary"}}
    return _operation(
        summary,
        "imgclf",
        _responses(_json(_ref(f"{kind}Response")), *statuses),
        parameters=[*MODEL_QUERY, option],
        requestBody={
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _ref(f"{kind}Multipart")},
                **_json(_ref(f"{kind}JSON"), example),
                "image/*": image_body,
                "application/octet-stream": image_body,
            },
        },
        operationId=kind.lower(),
    )


def _paths() -> dict:
    classify = _image_operation(
        "Classify",
        "Classify encoded images (any size and format): the top classes of each",
        ("400", "401", "404", "413", "503", "504"),
        {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"images": [EXAMPLE_PNG], "top_k": 3},
    )
    explain = _image_operation(
        "Explain",
        "Explain one image's answer: a heatmap of the model's input, by occlusion (IMGCLF_EXPLAIN_GRID)",
        ("400", "401", "404", "413", "503", "504"),
        {"name": "class_index", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"image": EXAMPLE_PNG},
    )
    feedback = _image_operation(
        "Feedback",
        "Store an image (or a recent request's image) with its correct label, for retraining (IMGCLF_FEEDBACK_ROOT)",
        ("400", "401", "404", "413", "501", "503", "507"),
        {"name": "label", "in": "query", "schema": {"type": "string"}},
        {"image": EXAMPLE_PNG, "label": "n01443537"},
    )
    return {
        "/classify": {"post": classify},
        "/explain": {"post": explain},
        "/feedback": {"post": feedback},
        "/predict": {
            "post": _operation(
                "Every class's probability for raw pixel arrays (any size: resized on the server)",
                "imgclf",
                _responses(_json(_ref("PredictResponse")), "400", "401", "404", "413", "503", "504"),
                requestBody={"required": True, "content": _json(_ref("PredictRequest"), {INPUT_NAME: [[[0, 0, 0], [255, 255, 255]]]})},
                operationId="predict",
            )
        },
        "/models": {"get": _operation("The served models", "imgclf", _responses(_json(_ref("Models")), "401"), operationId="listModels")},
        "/models/{name}": {
            "get": _operation(
                "One model: versions, input size, labels, preprocessing, metrics",
                "imgclf",
                _responses(_json(_ref("Model")), "400", "401", "404"),
                parameters=[NAME, MODEL_QUERY[1]],
                operationId="getModel",
            )
        },
        "/ui": {"get": _open(_operation("The browser page", "imgclf", _text("the page", "text/html")))},
        "/admin/reload": {
            "post": _operation(
                "Look in the model store for new versions now",
                "admin",
                _responses(_json(_ref("Reload")), "401", "503"),
                operationId="reloadModels",
            )
        },
        **_tf_serving_paths(),
        **_v2_paths(),
        "/openapi.json": {"get": _open(_operation("This document", "docs", _responses(_json({"type": "object"}))))},
        "/docs": {"get": _open(_operation("This document, rendered (Swagger UI)", "docs", _text("the page", "text/html")))},
        "/docs/assets/{file}": {
            "get": _open(
                _operation(
                    "The page's Swagger UI files",
                    "docs",
                    {
                        "200": {
                            "description": "the file",
                            "content": {"text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}},
                        },
                        "404": {"description": "no such file", "content": {**_json(_ref("Error")), "text/plain": {"schema": {"type": "string"}}}},
                    },
                    parameters=[{"name": "file", "in": "path", "required": True, "schema": {"type": "string", "enum": list(ASSETS)}}],
                )
            )
        },
        # BentoML's own routes, beside the app.
        "/healthz": {"get": _open(_operation("Liveness (BentoML)", "health", _text("alive")))},
        "/livez": {"get": _open(_operation("Liveness (BentoML)", "health", _text("alive")))},
        "/readyz": {
            "get": _open(
                _operation(
                    "Readiness (BentoML): 503 while loading or shutting down",
                    "health",
                    {**_text("ready"), "503": {"description": "not ready", "content": {"text/plain": {"schema": {"type": "string"}}}}},
                )
            )
        },
        "/metrics": {"get": _open(_operation("Prometheus metrics", "health", _text("the metrics in Prometheus' text format")))},
    }


def document(models: tuple[str, ...] = ()) -> dict:
    """The document; ``models`` (the served names, default first) become the examples of every
    model-name parameter, so that the page's "Try it out" and generated requests reach a model."""
    if not models:
        return _document()
    served = copy.deepcopy(_document())
    for operations in served["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "name" and parameter["in"] == "path":
                    parameter["example"] = models[0]
                    parameter["schema"] = {**parameter["schema"], "examples": list(models)}
    return served


@functools.cache
def _document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgclf",
            "version": open_inference.package_version(),
            "description": (
                "Image classification over HTTP: imgclf's own API, TensorFlow Serving's REST API and the Open Inference Protocol v2 "
                "(KServe, Triton), over the same models and the same decode and resize. The same service answers gRPC on its gRPC port. "
                "Errors are {\"error\": message}. When the service has API tokens, send 'Authorization: Bearer TOKEN'."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {"schemas": schemas.components(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi_json(request: Request, state: ServiceState | None) -> JSONResponse:
    models = ()  # Still loading: the document without examples.
    if state is not None:
        repository = state.repository
        models = (repository.default, *sorted(name for name in repository.models if name != repository.default))
    return JSONResponse(document(models))


def swagger_assets() -> Path:
    """The Swagger UI files BentoML's package ships (for its own index page)."""
    from bentoml._internal import server

    return Path(server.__file__).parent / "static_content"


ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imgclf API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true});
</script></body></html>
"""


async def docs(request: Request, state: ServiceState | None) -> HTMLResponse:
    # Relative links, so that the page works behind a path prefix too.
    return HTMLResponse(PAGE)


async def docs_asset(request: Request, state: ServiceState | None) -> FileResponse:
    name = request.path_params["file"]
    if name not in ASSETS:
        return JSONResponse({"error": f"no such file: {name}; the page's files are {', '.join(ASSETS)}"}, status_code=404)
    return FileResponse(swagger_assets() / name)
