"""The service's errors and their one mapping to HTTP statuses and gRPC codes."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServingError):
    http_status, grpc_code = 400, grpc.StatusCode.INVALID_ARGUMENT


class PayloadTooLarge(ServingError):
    http_status, grpc_code = 413, grpc.StatusCode.RESOURCE_EXHAUSTED


class ModelNotFound(ServingError):
    http_status, grpc_code = 404, grpc.StatusCode.NOT_FOUND


class Unavailable(ServingError):
    http_status, grpc_code = 503, grpc.StatusCode.UNAVAILABLE


class Overloaded(ServingError):
    """The model's queue in this worker is full, or a request waited in it too long: try again soon."""

    http_status, grpc_code = 503, grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(ServingError):
    """The request's deadline passed before its work reached the model (dropped, not run)."""

    http_status, grpc_code = 504, grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(ServingError):
    http_status, grpc_code = 401, grpc.StatusCode.UNAUTHENTICATED


class ClientGone(ServingError):
    """The client closed the connection before its answer was ready (nginx's 499); nobody reads it."""

    http_status, grpc_code = 499, grpc.StatusCode.CANCELLED
