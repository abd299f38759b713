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
