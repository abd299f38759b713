"""The HTTP routes (an ASGI app that the BentoML service mounts at /).

    POST /classify          images (multipart files, JSON base64, or a raw image body) -> top-k classes
    POST /predict           raw pixel arrays (JSON) -> probabilities
    GET  /models            the served models
    GET  /models/{name}     one model: versions, input size, labels, preprocessing, metrics
    GET  /ui                the browser page (serving/ui/index.html), which calls the routes above
    TensorFlow Serving's REST API (see tf_serving_rest.py):
    POST /v1/models/{name}[/versions/{v}]:predict, GET /v1/models/{name}[/versions/{v}][/metadata]
    The Open Inference Protocol v2 (KServe, Triton; see open_inference_rest.py):
    GET /v2, /v2/health/{live,ready}, /v2/models/{name}[/versions/{v}][/ready], POST .../infer
    POST /admin/reload      look in the model store for new versions now
    GET  /openapi.json      all of the above as an OpenAPI 3.1 document (openapi.py); /docs renders it

Every route but /ui, /docs, /openapi.json and /v2/health/* checks the API token and sets the request's deadline (serving/guards.py).

``model``, ``version`` and ``top_k`` come from the JSON body, the multipart form or the query.
Errors are ``{"error": message}`` with 400 (bad input), 401 (no or wrong token), 404 (unknown
model or version), 413 (over a limit), 503 (loading, shutting down, or overloaded: then with
``Retry-After``) or 504 (the deadline passed before the model ran).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

from serving import inference, open_inference_rest, openapi, tf_serving_rest
from serving.errors import InvalidInput
from serving.http_common import check_declared_length, decode_base64, guarded, parse_json, read_body
from serving.state import current


async def _classify_request(request: Request) -> tuple[list[bytes], dict]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options = dict(request.query_params)
    if content_type == "multipart/form-data":
        limit = current().settings
        check_declared_length(request, limit.max_body_bytes)
        try:
            form = await request.form(max_files=limit.max_batch + 1, max_part_size=limit.max_body_bytes)
        except Exception as error:
            raise InvalidInput(f"malformed multipart body: {error}") from None
        blobs = []
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                blobs.append(await value.read())
            elif key in ("model", "version", "top_k"):
                options[key] = value
        return blobs, options
    body = await read_body(request)
    if content_type in ("application/json", ""):
        if not body and content_type == "":
            raise InvalidInput('empty request: send images as multipart files, JSON {"images": [base64...]} or an image body')
        payload = parse_json(body)
        images = payload.get("images", payload.get("image"))
        if images is None:
            raise InvalidInput('the JSON body needs "images": a list of base64-encoded images')
        if not isinstance(images, list):
            images = [images]
        options.update({k: payload[k] for k in ("model", "version", "top_k") if k in payload})
        return [decode_base64(value, f"images[{i}]") for i, value in enumerate(images)], options
    return [body], options  # A raw image body (image/jpeg, application/octet-stream...).


async def classify(request: Request) -> JSONResponse:
    blobs, options = await _classify_request(request)
    state = current()
    model = state.repository.get(options.get("model"), options.get("version"))
    top_k = inference.check_top_k(options.get("top_k"), model, state.settings)
    predictions = await state.classify(model, blobs, top_k, "http")
    return JSONResponse({"model": model.name, "version": model.version, "predictions": predictions})


async def predict(request: Request) -> JSONResponse:
    payload = parse_json(await read_body(request))
    pixels = payload.get("pixels", payload.get("instances"))
    if not isinstance(pixels, list):
        raise InvalidInput('the JSON body needs "pixels": a list of images, each [height][width] or [height][width][channels]')
    state = current()
    model = state.repository.get(payload.get("model"), payload.get("version"))
    probabilities = await state.predict_arrays(model, pixels, "http")
    return JSONResponse({"model": model.name, "version": model.version, "probabilities": probabilities.tolist()})


async def list_models(request: Request) -> JSONResponse:
    state = current()
    return JSONResponse({"default": state.repository.default, "models": state.repository.describe()})


async def get_model(request: Request) -> JSONResponse:
    repository = current().repository
    name = request.path_params["name"]
    latest = repository.get(name, request.query_params.get("version"))
    return JSONResponse({**latest.describe(), "versions": sorted(repository.models[name])})


PAGE = (Path(__file__).parent / "ui" / "index.html").read_text()


async def page(request: Request) -> HTMLResponse:
    # The page calls "models" and "classify" relative to its own URL, so it works behind a path
    # prefix too; from /ui/ they would resolve under /ui/, hence the redirect.
    if request.url.path.endswith("/"):
        return RedirectResponse(request.url.path.rstrip("/"))
    return HTMLResponse(PAGE)


async def reload_models(request: Request) -> JSONResponse:
    """Looks in the model store for new versions now (what every worker also does each
    IMGCLF_POLL_SECONDS); answers with what this worker serves afterwards."""
    state = current()
    changes = await state.refresh_models()
    return JSONResponse({"changes": changes, "models": {name: sorted(v) for name, v in state.repository.models.items()}})


app = Starlette(
    routes=[
        Route("/classify", guarded(classify), methods=["POST"]),
        Route("/predict", guarded(predict), methods=["POST"]),
        Route("/models", guarded(list_models), methods=["GET"]),
        Route("/models/{name}", guarded(get_model), methods=["GET"]),
        Route("/ui", page, methods=["GET"]),
        Route("/ui/", page, methods=["GET"]),
        Route("/v1/models/{rest:path}", guarded(tf_serving_rest.handle), methods=["GET", "POST"]),
        *open_inference_rest.ROUTES,
        Route("/admin/reload", guarded(reload_models), methods=["POST"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs, methods=["GET"]),
        Route("/docs/assets/{file}", openapi.docs_asset, methods=["GET"]),
    ]
)
