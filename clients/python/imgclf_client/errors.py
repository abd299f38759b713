"""One exception family for both protocols; each carries the server's message."""

from __future__ import annotations

import builtins
import warnings


class ImgclfError(Exception):
    """Base of every error the client raises. ``status`` is the HTTP status or gRPC code name."""

    def __init__(self, message: str, status: int | str | None = None):
        super().__init__(message)
        self.message, self.status = message, status


class InvalidInputError(ImgclfError):
    """The request was refused as bad input (HTTP 400/413, gRPC INVALID_ARGUMENT, RESOURCE_EXHAUSTED without a retry hint),
    or an image could not be read on this side (a missing file, an unsupported object)."""


class ModelNotFoundError(ImgclfError):
    """No such model or version is served (HTTP 404, gRPC NOT_FOUND)."""


class AuthenticationError(ImgclfError):
    """The server wants a (different) token (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED)."""


class ServerError(ImgclfError):
    """The server failed (HTTP 5xx, gRPC INTERNAL/UNKNOWN/...)."""


class UnavailableError(ServerError):
    """The server is loading, overloaded or stopping (HTTP 503, gRPC UNAVAILABLE), still after retries."""


class OverloadedError(UnavailableError):
    """The model's queue was full (HTTP 503 with Retry-After, gRPC RESOURCE_EXHAUSTED with
    ``retry-after`` metadata), still after retries. ``retry_after``: the server's hint, in seconds."""

    def __init__(self, message: str, status: int | str | None = None, retry_after: float = 1.0):
        super().__init__(message, status)
        self.retry_after = retry_after


def retry_after(value) -> float | None:
    """Seconds from a Retry-After value (HTTP header or gRPC metadata); None if absent or a date."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 3600 else None


class APIConnectionError(ImgclfError, builtins.ConnectionError):
    """The server could not be reached, still after retries (also a built-in `ConnectionError`)."""


class APITimeoutError(ImgclfError, builtins.TimeoutError):
    """No answer within the timeout (HTTP 504, gRPC DEADLINE_EXCEEDED; also a built-in `TimeoutError`)."""


# The names before 0.2, which shadowed Python's built-ins: still importable for one release, with a warning.
DEPRECATED = {"ConnectionError": APIConnectionError, "TimeoutError": APITimeoutError}


def deprecated(name: str, module: str):
    """The class a deprecated name stands for, with a `DeprecationWarning` (a module's ``__getattr__``)."""
    if name not in DEPRECATED:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    replacement = DEPRECATED[name]
    warnings.warn(
        f"{module}.{name} is deprecated and will be removed in the next release; use {replacement.__name__}", DeprecationWarning, stacklevel=3
    )
    return replacement


def __getattr__(name: str):
    return deprecated(name, __name__)


def for_http_status(status: int, message: str, retry_after_header: str | None = None) -> ImgclfError:
    hint = retry_after(retry_after_header)
    if status == 503 and hint is not None:
        return OverloadedError(message, status, hint)
    if status in (400, 413, 422):
        return InvalidInputError(message, status)
    if status == 404:
        return ModelNotFoundError(message, status)
    if status in (401, 403):
        return AuthenticationError(message, status)
    if status == 503:
        return UnavailableError(message, status)
    if status == 504:
        return APITimeoutError(message, status)
    if status >= 500:
        return ServerError(message, status)
    return ImgclfError(message, status)


GRPC_CODES = {
    "INVALID_ARGUMENT": InvalidInputError,
    "RESOURCE_EXHAUSTED": InvalidInputError,
    "OUT_OF_RANGE": InvalidInputError,
    "FAILED_PRECONDITION": InvalidInputError,
    "NOT_FOUND": ModelNotFoundError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
    "UNAVAILABLE": UnavailableError,
    # These clients never cancel a call themselves, so CANCELLED means the server dropped it (a
    # stopping server resets the calls it has not taken yet): retryable, as UNAVAILABLE is.
    "CANCELLED": UnavailableError,
    "DEADLINE_EXCEEDED": APITimeoutError,
}


def for_grpc_code(code_name: str, message: str, retry_after_value: str | None = None) -> ImgclfError:
    hint = retry_after(retry_after_value)
    if code_name == "RESOURCE_EXHAUSTED" and hint is not None:  # Overloaded, not a request over a limit.
        return OverloadedError(message, code_name, hint)
    return GRPC_CODES.get(code_name, ServerError)(message, code_name)
