"""TensorFlow Serving's REST API over the same models, so a TF Serving client works unchanged.

    POST /v1/models/{name}[/versions/{v}]:predict   {"signature_name"?, "instances": [...]} or {"inputs": ...}
    GET  /v1/models/{name}[/versions/{v}]           model status
    GET  /v1/models/{name}[/versions/{v}]/metadata  signatures, as the exported SavedModel declares them

Signatures: ``serving_default`` takes ``pixels`` (float, [batch, H, W, 3], 0-255) and returns
``probabilities``; ``classify`` takes ``images`` as ``{"b64": ...}`` encoded image bytes and
returns ``class_index``, ``label``, ``name``, ``score`` (top k = min(5, classes)). Without
``signature_name``, instances of ``{"b64": ...}`` go to ``classify``, arrays to ``serving_default``.
Errors: ``{"error": message}``.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse

from serving.core import metrics
from serving.core.errors import InvalidInput, ModelNotFound, ServingError
from serving.core.repository import ServedModel
from serving.core.state import ServiceState
from serving.http.common import decode_base64, error_response, parse_json, read_body
from training.interface.contract import CLASSIFY_OUTPUTS, CLASSIFY_SIGNATURE, SERVING_SIGNATURE, SIGNATURES, classify_k

PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?::(?P<verb>predict)|/(?P<metadata>metadata))?")


def check_signature(signature: str | None) -> str | None:
    if signature not in (None, *SIGNATURES):
        raise InvalidInput(f"signature {signature!r} not found; signatures: {', '.join(SIGNATURES)}")
    return signature


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _instances(payload: dict, signature: str | None) -> tuple[list, bool, str]:
    """(instances, row format?, signature) from a TF Serving predict body."""
    if "instances" in payload:
        rows, row_format = payload["instances"], True
    elif "inputs" in payload:
        rows, row_format = payload["inputs"], False
        if isinstance(rows, dict):
            if len(rows) != 1:
                raise InvalidInput(f"inputs must name one tensor, got {sorted(rows)}")
            rows = next(iter(rows.values()))
    else:
        raise InvalidInput('the body needs "instances" (row format) or "inputs" (columnar format)')
    if not isinstance(rows, list):
        raise InvalidInput("instances must be a list")
    rows = [next(iter(row.values())) if isinstance(row, dict) and len(row) == 1 and not _is_b64(row) else row for row in rows]
    if signature is None:
        signature = CLASSIFY_SIGNATURE if rows and all(_is_b64(row) for row in rows) else SERVING_SIGNATURE
    return rows, row_format, signature


async def _predict(model: ServedModel, payload: dict, state: ServiceState) -> JSONResponse:
    signature = check_signature(payload.get("signature_name") or None)
    rows, row_format, signature = _instances(payload, signature)
    if signature == SERVING_SIGNATURE:
        probabilities = (await state.predict_arrays(model, rows, "tf-serving-rest")).tolist()
        return JSONResponse({"predictions": probabilities} if row_format else {"outputs": probabilities})
    blobs = [decode_base64(row, f"instances[{i}]") for i, row in enumerate(rows)]
    top = await state.classify(model, blobs, classify_k(model.num_classes), "tf-serving-rest")
    columns = {key: [[entry[key] for entry in image] for image in top] for key in CLASSIFY_OUTPUTS}
    if row_format:
        return JSONResponse({"predictions": [{key: columns[key][i] for key in columns} for i in range(len(top))]})
    return JSONResponse({"outputs": columns})


async def handle(request: Request, state: ServiceState) -> JSONResponse:
    match = PATH.fullmatch(request.path_params["rest"])
    try:
        if not match:
            raise ModelNotFound(f"no such TF Serving endpoint: /v1/models/{request.path_params['rest']}")
        repository = state.repository
        model = repository.get(match["name"], match["version"])
        if match["verb"] == "predict":
            if request.method != "POST":
                raise InvalidInput(":predict takes POST")
            return await _predict(model, parse_json(await read_body(request, state.settings.max_body_bytes)), state)
        if request.method != "GET":
            raise InvalidInput("model status and metadata take GET")
        if match["metadata"]:
            return JSONResponse(
                {
                    "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                    "metadata": {"signature_def": {"signature_def": model.signature_defs}},
                }
            )
        versions = [model] if match["version"] else [repository.get(model.name, v) for v in sorted(repository.models[model.name], reverse=True)]
        return JSONResponse(
            {
                "model_version_status": [
                    {"version": str(v.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}} for v in versions
                ]
            }
        )
    except ServingError as error:
        metrics.record_error(match["name"] if match else None, "tf-serving-rest", error)
        return error_response(error)
