"""What every request passes before its handler, on both protocols: the API-token check and the
request's deadline.

* Tokens (`Settings.tokens`, from IMGCLF_TOKENS / IMGCLF_TOKEN_FILE): ``Authorization: Bearer
  TOKEN``, as an HTTP header or gRPC metadata, compared with every configured token in constant
  time. Health checks (BentoML's /healthz, /livez, /readyz, /v2/health/*, gRPC ``grpc.health.v1``,
  v2 ServerLive and ServerReady), /metrics,
  gRPC reflection and the /ui page itself stay open; the page's own calls need the token.
* Deadlines: a gRPC call's own deadline, else an HTTP ``X-Request-Timeout: SECONDS`` header, else
  IMGCLF_REQUEST_TIMEOUT_S. `ServiceState` reads it from `DEADLINE` and drops work that is late.
"""

from __future__ import annotations

import contextvars
import hmac
import math

from serving.core.errors import InvalidInput, Unauthenticated
from serving.core.settings import Settings

# The `time.monotonic` instant the current request must be answered by (None: the default timeout).
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("imgclf_deadline", default=None)

TIMEOUT_HEADER = "x-request-timeout"
# Method-name prefixes that need no token: health (and the v2 protocol's own liveness and
# readiness calls, which orchestrators probe like health) and reflection.
OPEN_GRPC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
)


def check_token(settings: Settings, authorization: str | None) -> None:
    """Raises `Unauthenticated` unless ``authorization`` is ``Bearer <a configured token>``."""
    if not settings.auth_required:
        return
    if not authorization:
        raise Unauthenticated("this service needs an API token: send the header 'Authorization: Bearer TOKEN'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer TOKEN'")
    presented = token.strip().encode()
    # Compare with every token, so the time taken does not tell which (or how much of one) matched.
    matched = False
    for known in settings.tokens:
        matched |= hmac.compare_digest(presented, known.encode())
    if not matched:
        raise Unauthenticated("the API token is not valid")


def http_timeout(value: str | None) -> float | None:
    """Seconds from an ``X-Request-Timeout`` header (None when absent)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidInput(f"X-Request-Timeout must be a number of seconds, got {value!r}") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise InvalidInput(f"X-Request-Timeout must be a positive number of seconds, got {value!r}")
    return seconds


# For HTTP: a coroutine function that returns when the client has gone away (None elsewhere:
# grpc.aio cancels the handler itself when its client cancels or its deadline passes).
CLIENT_GONE: contextvars.ContextVar = contextvars.ContextVar("imgclf_client_gone", default=None)


def http_disconnect_waiter(receive):
    """For an HTTP request whose body has been read: waits for the ASGI ``http.disconnect``."""

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait
