"""imgclf's own HTTP API: classify encoded images, predict on pixel arrays, describe the served
models, reload them, and the browser page. Every handler takes ``(request, state)``
(`serving.http.common`); `serving.http.app` routes to them.

``model``, ``version`` and ``top_k`` come from the JSON body, the multipart form or the query.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

from serving.core import explain as explain_method
from serving.core import inference
from serving.core.errors import InvalidInput
from serving.core.state import ServiceState
from serving.http.common import check_declared_length, decode_base64, parse_json, read_body

CLASSIFY_OPTIONS = ("model", "version", "top_k")
EXPLAIN_OPTIONS = ("model", "version", "class_index")
FEEDBACK_OPTIONS = ("model", "version", "label", "request_id", "index")


async def _image_request(
    request: Request, state: ServiceState, keys: tuple[str, ...] = CLASSIFY_OPTIONS, images_optional: bool = False
) -> tuple[list[bytes], dict]:
    """The images of a request (multipart files, JSON base64 or a raw image body) and its options
    ``keys``; with ``images_optional`` a request may hold none (feedback naming a request_id)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    options = dict(request.query_params)
    if content_type == "multipart/form-data":
        limit = state.settings
        check_declared_length(request, limit.max_body_bytes)
        try:
            form = await request.form(max_files=limit.max_batch + 1, max_part_size=limit.max_body_bytes)
        except ClientDisconnect:
            raise  # Not a malformed body: the guard answers it (`common.guarded`).
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
            if images_optional:
                return [], options
            raise InvalidInput('empty request: send images as multipart files, JSON {"images": [base64...]} or an image body')
        payload = parse_json(body)
        images = payload.get("images", payload.get("image"))
        if images is None and images_optional:
            images = []
        if images is None:
            raise InvalidInput('the JSON body needs "images": a list of base64-encoded images')
        if not isinstance(images, list):
            images = [images]
        options.update({k: payload[k] for k in keys if k in payload})
        return [decode_base64(value, f"images[{i}]") for i, value in enumerate(images)], options
    return ([body] if body or not images_optional else []), options  # A raw image body (image/jpeg, application/octet-stream...).


async def classify(request: Request, state: ServiceState) -> JSONResponse:
    blobs, options = await _image_request(request, state)
    model = state.repository.get(options.get("model"), options.get("version"))
    top_k = inference.check_top_k(options.get("top_k"), model, state.settings)
    probabilities = await state.predict_images(model, blobs, "http")
    answer = {"model": model.name, "version": model.version, "predictions": inference.top_classes(probabilities, model, top_k)}
    request_id = state.remember(model, blobs, probabilities)  # With feedback on: what /feedback may name.
    return JSONResponse({**answer, "request_id": request_id} if request_id else answer, headers={"x-request-id": request_id} if request_id else None)


async def feedback(request: Request, state: ServiceState) -> JSONResponse:
    """An image (or the ``request_id`` of a recent classify request, and the image's ``index`` in
    it) with its correct ``label``, stored for retraining: `serving.core.feedback`."""
    blobs, options = await _image_request(request, state, FEEDBACK_OPTIONS, images_optional=True)
    label, request_id = options.get("label"), options.get("request_id") or None
    if not isinstance(label, str) or not label:
        raise InvalidInput('feedback needs "label": the correct class id, one of the model\'s labels')
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"request_id must be a string, got {type(request_id).__name__}")
    if blobs and request_id:
        raise InvalidInput("send either the image or the request_id of the request that classified it, not both")
    if len(blobs) > 1:
        raise InvalidInput(f"feedback is about one image; the request holds {len(blobs)}")
    index = options.get("index", 0)
    if isinstance(index, bool) or not (isinstance(index, int) or isinstance(index, str) and index.isdigit()):
        raise InvalidInput(f"index must be a whole number (the image's place in its request), got {index!r}")
    named = options.get("model") or options.get("version")
    model = state.repository.get(options.get("model"), options.get("version")) if named or not request_id else None
    result = await state.give_feedback(model, label, "http", blob=blobs[0] if blobs else None, request_id=request_id, index=int(index))
    return JSONResponse(result)


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
