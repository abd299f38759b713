"""What every HTTP route shares: the worker's state, handed to every handler as its second
argument (`guarded` routes, which also check the token, set the deadline and watch for the client
going away; `open_route` ones); reading a bounded body; parsing JSON and base64; and the one error
response (``{"error": message}`` with the error's status)."""

from __future__ import annotations

import base64
import binascii
import json
import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from serving.core import guards, metrics
from serving.core.errors import ClientGone, InvalidInput, Overloaded, PayloadTooLarge, ServingError, Unavailable
from serving.core.state import ServiceState

STATE = "imgclf"  # The worker's `ServiceState` lives on the app's state under this name.


def install(app, state: ServiceState | None) -> None:
    """Hands ``state`` to ``app``'s handlers (the BentoML service does, once its models are loaded)."""
    setattr(app.state, STATE, state)


def state_of(request: Request) -> ServiceState:
    state = getattr(request.app.state, STATE, None)
    if state is None:
        raise Unavailable("the service is still loading its models")
    return state


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    check_declared_length(request, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"malformed JSON body: {error}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"the JSON body must be an object, got {type(value).__name__}")
    return value


def decode_base64(value, where: str) -> bytes:
    if isinstance(value, dict) and "b64" in value:
        value = value["b64"]
    if not isinstance(value, str):
        raise InvalidInput(f'{where} must be a base64 string (or {{"b64": ...}}), got {type(value).__name__}')
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(f"{where} is not valid base64: {error}") from None


def error_response(error: Exception) -> JSONResponse:
    if isinstance(error, ServingError):
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Overloaded) else None
        return JSONResponse({"error": error.message}, status_code=error.http_status, headers=headers)
    return JSONResponse({"error": f"internal error: {type(error).__name__}"}, status_code=500)


def guarded(handler, protocol: str = "http"):
    """The token check, the request's deadline and the disconnect watch, then ``handler(request,
    state)``; a `ServingError` becomes ``{"error": message}`` with its status (counted under ``protocol``),
    and a client that hung up before its whole body arrived is a `ClientGone` (cancelled, not a bad request)."""

    async def guard(request: Request):
        try:
            try:
                state = state_of(request)
                guards.check_token(state.settings, request.headers.get("authorization"))
                timeout = guards.http_timeout(request.headers.get(guards.TIMEOUT_HEADER))
                guards.DEADLINE.set(time.monotonic() + (state.settings.request_timeout_s if timeout is None else timeout))
                guards.CLIENT_GONE.set(guards.http_disconnect_waiter(request.receive))
                return await handler(request, state)
            except ClientDisconnect:
                raise ClientGone("the client went away while its request body was being read") from None
        except ServingError as error:
            metrics.record_error(request.query_params.get("model"), protocol, error)
            return error_response(error)

    guard.__name__ = handler.__name__
    return guard


def open_route(handler):
    """``handler(request, state)`` with no token asked; ``state`` is None while the models load."""

    async def route(request: Request):
        return await handler(request, getattr(request.app.state, STATE, None))

    route.__name__ = handler.__name__
    return route
