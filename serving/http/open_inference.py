"""The Open Inference Protocol v2 over HTTP (KServe v2 / Triton), so that tritonclient.http and
KServe's SDK work unchanged. Inputs and outputs: see open_inference.py.

    GET  /v2                                        server metadata (name, version, extensions)
    GET  /v2/health/live, /v2/health/ready          200 when live / ready (no token needed)
    GET  /v2/models/{name}[/versions/{v}]           model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready     200 when the model (version) is served
    POST /v2/models/{name}[/versions/{v}]/infer     inference

An infer body is JSON: ``{"id"?, "parameters"?, "inputs": [{"name", "datatype", "shape",
"data"}], "outputs"?: [{"name", "parameters"?}]}``; ``data`` is flat or nested, row-major, and
``images`` elements are base64 strings (JSON has no bytes). Triton's binary tensor extension: with
an ``Inference-Header-Content-Length: N`` header, the JSON is the body's first N bytes and an
input with ``"parameters": {"binary_data_size": S}`` takes its next S bytes, in input order
(little-endian; BYTES elements each after a 4-byte length). Outputs come back binary the same way
when asked: ``"binary_data": true`` on the output, or ``"binary_data_output": true`` on the
request. Errors: ``{"error": message}`` with 400, 401, 404, 413, 503 or 504.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from serving.core.errors import InvalidInput, Unavailable
from serving.core.state import ServiceState
from serving.http.common import decode_base64, parse_json, read_body
from serving.protocols import open_inference
from serving.protocols.open_inference import InputTensor, RequestedOutput, check_classification, check_datatype, check_input, check_shape

PROTOCOL = "v2-rest"
HEADER_LENGTH = "Inference-Header-Content-Length"


def _parameters(holder: dict, where: str) -> dict:
    parameters = holder.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}: parameters must be an object, got {type(parameters).__name__}")
    return parameters


def _flatten(data) -> list:
    if not isinstance(data, list):
        return [data]
    flat = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else (item,))
    return flat


def _split_body(request: Request, body: bytes) -> tuple[bytes, bytes]:
    """(JSON header, binary data) of an infer body."""
    declared = request.headers.get(HEADER_LENGTH)
    if declared is None:
        return body, b""
    if not declared.strip().isdigit():
        raise InvalidInput(f"{HEADER_LENGTH} must be the JSON header's length in bytes, got {declared!r}")
    length = int(declared)
    if length > len(body):
        raise InvalidInput(f"{HEADER_LENGTH} is {length}, which runs past the {len(body)}-byte body")
    return body[:length], body[length:]


def _inputs(payload: dict, binary: bytes) -> list[InputTensor]:
    tensors = payload.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput('the body needs "inputs": a list of tensors, each {"name", "datatype", "shape", "data"}')
    inputs, offset = [], 0
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInput(f'inputs[{index}] must be an object with a "name", "datatype", "shape" and "data"')
        where = f"input {tensor['name']!r}"
        datatype = check_datatype(tensor.get("datatype"), where)
        shape = check_shape(tensor.get("shape"), where)
        check_input(tensor["name"], datatype, shape)
        size = _parameters(tensor, where).get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise InvalidInput(f"{where}: binary_data_size must be a byte count, got {size!r}")
            if offset + size > len(binary):
                raise InvalidInput(
                    f"{where}: binary_data_size {size} runs past the binary data after the JSON header ({len(binary) - offset} bytes left)"
                )
            data = open_inference.from_raw(binary[offset : offset + size], datatype, shape, where)
            offset += size
        elif "data" in tensor:
            values = _flatten(tensor["data"])
            if datatype == "BYTES":
                values = [decode_base64(value, f"{where} element {i}") for i, value in enumerate(values)]
            data = open_inference.from_values(values, datatype, shape, where)
        else:
            raise InvalidInput(f'{where} needs "data", or "parameters": {{"binary_data_size": N}} and its N bytes after the JSON header')
        inputs.append(InputTensor(tensor["name"], datatype, shape, data))
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data follow the JSON header that no input's binary_data_size accounts for")
    return inputs


def _outputs(payload: dict) -> tuple[list[RequestedOutput], list[bool]]:
    """The requested outputs, and whether each (or, if none are named, every one) goes back binary."""
    binary = _parameters(payload, "the request").get("binary_data_output", False)
    requested = payload.get("outputs", [])
    if not isinstance(requested, list):
        raise InvalidInput('"outputs" must be a list of {"name", "parameters"?}')
    outputs, flags = [], []
    for index, output in enumerate(requested):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise InvalidInput(f'outputs[{index}] must be an object with a "name"')
        where = f"output {output['name']!r}"
        parameters = _parameters(output, where)
        k = parameters.get(open_inference.CLASSIFICATION)
        outputs.append(RequestedOutput(output["name"], None if k is None else check_classification(k, where)))
        flags.append(bool(parameters.get("binary_data", binary)))
    return outputs, flags or [bool(binary)]


def _model(request: Request, state: ServiceState):
    return state.repository.get(request.path_params["name"], request.path_params.get("version"))


async def infer(request: Request, state: ServiceState) -> Response:
    header, binary = _split_body(request, await read_body(request, state.settings.max_body_bytes))
    payload = parse_json(header)
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"id must be a string, got {type(request_id).__name__}")
    model = _model(request, state)
    inputs = _inputs(payload, binary)
    requested, binary_flags = _outputs(payload)
    outputs = await open_inference.infer(state, model, inputs, requested, PROTOCOL)
    body = {"model_name": model.name, "model_version": str(model.version), **({"id": request_id} if request_id is not None else {}), "outputs": []}
    chunks = []
    for tensor, as_binary in zip(outputs, binary_flags):
        entry = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if as_binary:
            raw = open_inference.to_raw(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            flat = tensor.data.reshape(-1)
            entry["data"] = [value.decode() for value in flat] if tensor.datatype == "BYTES" else flat.tolist()
        body["outputs"].append(entry)
    if not chunks:
        return JSONResponse(body)
    encoded = json.dumps(body, separators=(",", ":")).encode()
    return Response(encoded + b"".join(chunks), media_type="application/octet-stream", headers={HEADER_LENGTH: str(len(encoded))})


async def server_metadata(request: Request, state: ServiceState) -> JSONResponse:
    return JSONResponse(open_inference.server_metadata())


async def model_metadata(request: Request, state: ServiceState) -> JSONResponse:
    return JSONResponse(open_inference.model_metadata(state.repository, _model(request, state)))


async def model_statistics(request: Request, state: ServiceState) -> JSONResponse:
    """The statistics extension: ``GET /v2/models/stats``, ``/v2/models/{name}/stats``, ``.../versions/{v}/stats``."""
    name = request.path_params.get("name")
    return JSONResponse(open_inference.model_statistics(state.repository, name, request.path_params.get("version")))


async def model_ready(request: Request, state: ServiceState) -> JSONResponse:
    model = _model(request, state)
    return JSONResponse({"name": model.name, "version": str(model.version), "ready": True})


async def live(request: Request, state: ServiceState | None) -> JSONResponse:
    return JSONResponse({"live": True})


async def ready(request: Request, state: ServiceState | None) -> JSONResponse:
    """200 once the models are loaded, 503 while loading or shutting down (tokens not needed)."""
    if state is None or state.draining:
        error = Unavailable("the service is still loading its models" if state is None else "the service is shutting down")
        return JSONResponse({"ready": False, "error": error.message}, status_code=503)
    return JSONResponse({"ready": True})
