"""imgclf's own HTTP API: classify encoded images, predict on pixel arrays, describe the served
models, reload them, and the browser page. Every handler takes ``(request, state)``
(`serving.http.common`); `serving.http.app` routes to them.

``model``, ``version`` and ``top_k`` come from the JSON body, the multipart form or the query.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

from serving.core import explain as explain_method
from serving.core import inference
from serving.core.errors import InvalidInput
from serving.core.state import ServiceState
from serving.http.common import check_declared_length, decode_base64, parse_json, read_body

CLASSIFY_OPTIONS = ("model", "version", "top_k")
EXPLAIN_OPTIONS = ("model", "version", "class_index")


async def _image_request(request: Request, state: ServiceState, keys: tuple[str, ...] = CLASSIFY_OPTIONS) -> tuple[list[bytes], dict]:
    """The images of a request (multipart files, JSON base64 or a raw image body) and its options ``keys``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options = dict(request.query_params)
    if content_type == "multipart/form-data":
        limit = state.settings
        check_declared_length(request, limit.max_body_bytes)
        try:
            form = await request.form(max_files=limit.max_batch + 1, max_part_size=limit.max_body_bytes)
        except Exception as error:
            raise InvalidInput(f"malformed multipart body: {error}") from None
        blobs = []
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                blobs.append(await value.read())
            elif key in keys:
                options[key] = value
        return blobs, options
    body = await read_body(request, state.settings.max_body_bytes)
    if content_type in ("application/json", ""):
        if not body and content_type == "":
            raise InvalidInput('empty request: send images as multipart files, JSON {"images": [base64...]} or an image body')
        payload = parse_json(body)
        images = payload.get("images", payload.get("image"))
        if images is None:
            raise InvalidInput('the JSON body needs "images": a list of base64-encoded images')
        if not isinstance(images, list):
            images = [images]
        options.update({k: payload[k] for k in keys if k in payload})
        return [decode_base64(value, f"images[{i}]") for i, value in enumerate(images)], options
    return [body], options  # A raw image body (image/jpeg, application/octet-stream...).


async def classify(request: Request, state: ServiceState) -> JSONResponse:
    blobs, options = await _image_request(request, state)
    model = state.repository.get(options.get("model"), options.get("version"))
    top_k = inference.check_top_k(options.get("top_k"), model, state.settings)
    predictions = await state.classify(model, blobs, top_k, "http")
    return JSONResponse({"model": model.name, "version": model.version, "predictions": predictions})


async def explain(request: Request, state: ServiceState) -> JSONResponse:
    """One image's explanation for ``class_index`` (default: the top class): `serving.core.explain`."""
    blobs, options = await _image_request(request, state, EXPLAIN_OPTIONS)
    model = state.repository.get(options.get("model"), options.get("version"))
    class_index = explain_method.check_class_index(options.get("class_index"), model.num_classes, model.name)
    explain_method.check_one_image(len(blobs), state.settings)
    result = await state.explain(model, blobs[0], class_index, "http")
    return JSONResponse({"model": model.name, "version": model.version, **result, "heatmap": result["heatmap"].tolist()})


async def predict(request: Request, state: ServiceState) -> JSONResponse:
    payload = parse_json(await read_body(request, state.settings.max_body_bytes))
    pixels = payload.get("pixels", payload.get("instances"))
    if not isinstance(pixels, list):
        raise InvalidInput('the JSON body needs "pixels": a list of images, each [height][width] or [height][width][channels]')
    model = state.repository.get(payload.get("model"), payload.get("version"))
    probabilities = await state.predict_arrays(model, pixels, "http")
    return JSONResponse({"model": model.name, "version": model.version, "probabilities": probabilities.tolist()})


async def list_models(request: Request, state: ServiceState) -> JSONResponse:
    return JSONResponse({"default": state.repository.default, "models": state.repository.describe()})


async def get_model(request: Request, state: ServiceState) -> JSONResponse:
    repository = state.repository
    name = request.path_params["name"]
    latest = repository.get(name, request.query_params.get("version"))
    return JSONResponse({**latest.describe(), "versions": sorted(repository.models[name])})


PAGE = (Path(__file__).parents[1] / "ui" / "index.html").read_text()


async def page(request: Request, state: ServiceState | None) -> HTMLResponse:
    # The page calls "models" and "classify" relative to its own URL, so it works behind a path
    # prefix too; from /ui/ they would resolve under /ui/, hence the redirect.
    if request.url.path.endswith("/"):
        return RedirectResponse(request.url.path.rstrip("/"))
    return HTMLResponse(PAGE)


async def reload_models(request: Request, state: ServiceState) -> JSONResponse:
    """Looks in the model store for new versions now (what every worker also does each
    IMGCLF_POLL_SECONDS); answers with what this worker serves afterwards."""
    changes = await state.refresh_models()
    return JSONResponse({"changes": changes, "models": {name: sorted(v) for name, v in state.repository.models.items()}})
