"""The service's errors and their one table: each error's HTTP status, gRPC code and meaning.
The OpenAPI document's error responses and the documentation's error table are generated from it."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    meaning = ""  # What the status means to a client, in the error table (empty: not listed).

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServingError):
    http_status, grpc_code = 400, grpc.StatusCode.INVALID_ARGUMENT
    meaning = "Bad input: the message names the problem"


class Unauthenticated(ServingError):
    http_status, grpc_code = 401, grpc.StatusCode.UNAUTHENTICATED
    meaning = "No API token, or a wrong one"


class ModelNotFound(ServingError):
    http_status, grpc_code = 404, grpc.StatusCode.NOT_FOUND
    meaning = "Unknown model, version or route"


class PayloadTooLarge(ServingError):
    http_status, grpc_code = 413, grpc.StatusCode.RESOURCE_EXHAUSTED
    meaning = "Over a limit (body size, batch size, image pixels)"


class InsufficientStorage(ServingError):
    """The feedback folder's disk quota would be passed (IMGCLF_FEEDBACK_QUOTA_BYTES): nothing was stored."""

    http_status, grpc_code = 507, grpc.StatusCode.RESOURCE_EXHAUSTED
    meaning = "The feedback folder is full: its quota is named"


class FeedbackDisabled(ServingError):
    http_status, grpc_code = 501, grpc.StatusCode.UNIMPLEMENTED
    meaning = "Feedback is off (IMGCLF_FEEDBACK_ROOT is not set)"


class Unavailable(ServingError):
    http_status, grpc_code = 503, grpc.StatusCode.UNAVAILABLE
    meaning = "Loading or shutting down"


class Overloaded(ServingError):
    """The model's queue in this worker is full, or a request waited in it too long: try again soon."""

    http_status, grpc_code = 503, grpc.StatusCode.RESOURCE_EXHAUSTED
    meaning = "Overloaded: the answer says when to retry (Retry-After; gRPC retry-after metadata)"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(ServingError):
    """The request's deadline passed before its work reached the model (dropped, not run)."""

    http_status, grpc_code = 504, grpc.StatusCode.DEADLINE_EXCEEDED
    meaning = "The deadline passed before the model ran"


class ClientGone(ServingError):
    """The client closed the connection before its answer was ready (nginx's 499); nobody reads it."""

    http_status, grpc_code = 499, grpc.StatusCode.CANCELLED


def table() -> list[type[ServingError]]:
    """The errors a client can see, in status order: `ServingError`'s subclasses with a meaning."""
    listed = [error for error in ServingError.__subclasses__() if error.meaning]
    return sorted(listed, key=lambda error: error.http_status)


def http_statuses() -> dict[str, str]:
    """Each HTTP status a client can see and what it means (errors sharing a status joined)."""
    statuses: dict[str, list[str]] = {}
    for error in table():
        statuses.setdefault(str(error.http_status), []).append(error.meaning)
    return {status: "; ".join(meanings) for status, meanings in statuses.items()}


def markdown_table() -> str:
    """The table as the documentation shows it."""
    rows = ["| error | HTTP | gRPC | meaning |", "|---|---|---|---|"]
    rows += [f"| `{error.__name__}` | {error.http_status} | {error.grpc_code.name} | {error.meaning} |" for error in table()]
    return "\n".join(rows)
