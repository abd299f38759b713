"""The HTTP API as an OpenAPI 3.1 document (``GET /openapi.json``) and the page that renders it
(``GET /docs``: Swagger UI, from the copy BentoML's package ships, so it works offline).

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

from serving.core.state import ServiceState
from serving.protocols import open_inference
from training.interface.contract import CLASSIFY_INPUT, CLASSIFY_OUTPUTS, INPUT_NAME, OUTPUT_NAME, SIGNATURES

JSON = "application/json"
ERROR_STATUSES = {
    "400": "Bad input: the message names the problem",
    "401": "No API token, or a wrong one",
    "404": "Unknown model, version or route",
    "413": "Over a limit (body size, batch size, image pixels)",
    "503": "Loading, shutting down, or overloaded (then with Retry-After)",
    "504": "The deadline passed before the model ran",
}
# A real 4x4 PNG (red), so that the examples work as they are, from the page's "Try it out" too.
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFElEQVR42mM8IafBAANMDEgANwcANmABFoY7C7AAAAAASUVORK5CYII="
# What a model name and a version look like in a path (exported names are such; versions are numbers).
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "a version number"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, example=None) -> dict:
    return {JSON: {"schema": schema, **({"example": example} if example is not None else {})}}


def _responses(ok: dict, *errors: str, description: str = "OK") -> dict:
    responses = {"200": {"description": description, "content": ok}}
    for status in errors:
        responses[status] = {"description": ERROR_STATUSES[status], "content": _json(_ref("Error"))}
    if "404" in responses:
        # A path no route matches at all (e.g. a name holding a newline, which BentoML's mount at /
        # does not match) gets BentoML's own plain-text 404.
        responses["404"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return responses


PIXELS = {
    "type": "array",
    "description": "one image: [height][width] or [height][width][1|3|4] of raw 0-255 values, any size (resized on the server)",
    "items": {"type": "array"},
}
SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}, "example": {"error": "top_k must be an integer"}},
    "ClassifyJSON": {
        "type": "object",
        "required": ["images"],
        "properties": {
            "images": {
                "type": "array",
                "items": {"oneOf": [{"type": "string", "contentEncoding": "base64"}, {"type": "object", "properties": {"b64": {"type": "string"}}}]},
                "description": "base64-encoded images (any format and size), or {b64: ...} objects",
            },
            "model": {"type": "string"},
            "version": {"type": ["integer", "string"]},
            "top_k": {"type": "integer", "minimum": 1},
        },
    },
    "ClassifyMultipart": {
        "type": "object",
        "properties": {
            "image": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
            "model": {"type": "string"},
            "version": {"type": "string"},
            "top_k": {"type": "string"},
        },
    },
    "Class": {
        "type": "object",
        "required": ["class_index", "label", "name", "score"],
        "properties": {"class_index": {"type": "integer"}, "label": {"type": "string"}, "name": {"type": "string"}, "score": {"type": "number"}},
    },
    "ClassifyResponse": {
        "type": "object",
        "required": ["model", "version", "predictions"],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "predictions": {"type": "array", "items": {"type": "array", "items": _ref("Class")}, "description": "per image, best first"},
        },
    },
    "PredictRequest": {
        "type": "object",
        "required": [INPUT_NAME],
        "properties": {INPUT_NAME: {"type": "array", "items": PIXELS}, "model": {"type": "string"}, "version": {"type": ["integer", "string"]}},
    },
    "PredictResponse": {
        "type": "object",
        "required": ["model", "version", OUTPUT_NAME],
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            OUTPUT_NAME: {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": "per image, per class"},
        },
    },
    "Model": {
        "type": "object",
        "required": ["name", "version", "input_size", "num_classes"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "versions": {"type": "array", "items": {"type": "integer"}},
            "runtime": {"type": "string"},
            "input_size": {"type": "array", "items": {"type": "integer"}},
            "num_classes": {"type": "integer"},
        },
    },
    "Models": {
        "type": "object",
        "required": ["default", "models"],
        "properties": {"default": {"type": "string"}, "models": {"type": "array", "items": _ref("Model")}},
    },
    "Reload": {
        "type": "object",
        "required": ["changes", "models"],
        "properties": {
            "changes": {"type": "array", "items": {"type": "string"}},
            "models": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
        },
    },
    "TFServingPredictRequest": {
        "type": "object",
        "description": f"signatures: {', '.join(SIGNATURES)}; instances of {{b64: ...}} go to classify, arrays to serving_default",
        "properties": {
            "signature_name": {"type": "string", "enum": ["", *SIGNATURES]},
            "instances": {"type": "array", "description": f"row format: pixel arrays, or {{{CLASSIFY_INPUT!r}: {{b64: ...}}}} / {{b64: ...}}"},
            "inputs": {"description": "columnar format"},
        },
    },
    "TFServingPredictResponse": {
        "type": "object",
        "description": f"serving_default: {OUTPUT_NAME} rows; classify: {', '.join(CLASSIFY_OUTPUTS)} per instance",
        "properties": {"predictions": {"type": "array"}, "outputs": {}},
    },
    "TFServingStatus": {
        "type": "object",
        "required": ["model_version_status"],
        "properties": {
            "model_version_status": {
                "type": "array",
                "items": {"type": "object", "properties": {"version": {"type": "string"}, "state": {"type": "string"}, "status": {"type": "object"}}},
            }
        },
    },
    "TFServingMetadata": {
        "type": "object",
        "required": ["model_spec", "metadata"],
        "properties": {"model_spec": {"type": "object"}, "metadata": {"type": "object", "properties": {"signature_def": {"type": "object"}}}},
    },
    "V2Tensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": list(open_inference.DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}},
            "data": {"type": "array", "description": "row-major, flat or nested; BYTES elements as base64 strings"},
        },
    },
    "V2InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "description": f"one input: {open_inference.IMAGES!r} (BYTES [N], encoded images) or {INPUT_NAME!r} (UINT8|FP32 [N,H,W,3])",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
            "inputs": {"type": "array", "items": _ref("V2Tensor"), "minItems": 1},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": [OUTPUT_NAME]},
                        "parameters": {
                            "type": "object",
                            "properties": {"classification": {"type": "integer", "minimum": 1}, "binary_data": {"type": "boolean"}},
                        },
                    },
                },
            },
        },
    },
    "V2InferResponse": {
        "type": "object",
        "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _ref("V2Tensor")},
        },
    },
    "V2ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}},
    },
    "V2ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "datatype", "shape"]}},
            "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "datatype", "shape"]}},
        },
    },
}


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
    for prefix, parameters in (("/v2/models/{name}", [NAME]), ("/v2/models/{name}/versions/{version}", [NAME, VERSION])):
        metadata = _responses(_json(_ref("V2ModelMetadata")), "400", "401", "404")
        paths[prefix] = {"get": _operation("Model metadata", tag, metadata, parameters=parameters)}
        model_ready = {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "ready": {"type": "boolean"}}}
        paths[f"{prefix}/ready"] = {"get": _operation("Model ready", tag, _responses(_json(model_ready), "400", "401", "404"), parameters=parameters)}
        infer_responses = _responses({**_json(_ref("V2InferResponse")), **binary_response}, "400", "401", "404", "413", "503", "504")
        paths[f"{prefix}/infer"] = {
            "post": _operation("Inference", tag, infer_responses, parameters=[*parameters, length], requestBody=copy.deepcopy(infer_body))
        }
    return paths


def _paths() -> dict:
    image_body = {"schema": {"type": "string", "format": "binary"}}
    classify = _operation(
        "Classify encoded images (any size and format): the top classes of each",
        "imgclf",
        _responses(_json(_ref("ClassifyResponse")), "400", "401", "404", "413", "503", "504"),
        parameters=[*MODEL_QUERY, {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
        requestBody={
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _ref("ClassifyMultipart")},
                **_json(_ref("ClassifyJSON"), {"images": [EXAMPLE_PNG], "top_k": 3}),
                "image/*": image_body,
                "application/octet-stream": image_body,
            },
        },
        operationId="classify",
    )
    return {
        "/classify": {"post": classify},
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
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
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
