"""Python SDK for the imgclf prediction service.

    from imgclf_client import HttpClient, GrpcClient, AsyncHttpClient, AsyncGrpcClient

Each client has the same methods: ``classify(images, model=None, version=None, top_k=5)``,
``predict(pixels, ...)``, ``explain(image, model=None, class_index=None)`` (a heatmap of what the
answer depends on), ``feedback(image, label, model=None)`` (the correct label of a wrong answer,
stored for retraining), ``models()``, ``model(name)`` and ``health()``. Images may be file paths,
bytes, binary file objects, PIL images or numpy arrays of any size; they travel as encoded bytes
and the server decodes and resizes them. Errors of both protocols are one family
(`imgclf_client.errors`).
"""

from imgclf_client import errors as _errors
from imgclf_client.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ImgclfError,
    InvalidInputError,
    ModelNotFoundError,
    OverloadedError,
    ServerError,
    UnavailableError,
)
from imgclf_client.grpc_client import AsyncGrpcClient, GrpcClient
from imgclf_client.http_client import AsyncHttpClient, HttpClient
from imgclf_client.results import Classification, ClassifyResult, ExplainResult, FeedbackResult, Health, ModelInfo, PredictResult
from imgclf_client.retry import RetryPolicy

__all__ = [
    "HttpClient",
    "AsyncHttpClient",
    "GrpcClient",
    "AsyncGrpcClient",
    "RetryPolicy",
    "Classification",
    "ClassifyResult",
    "PredictResult",
    "ExplainResult",
    "FeedbackResult",
    "ModelInfo",
    "Health",
    "ImgclfError",
    "InvalidInputError",
    "ModelNotFoundError",
    "AuthenticationError",
    "ServerError",
    "UnavailableError",
    "OverloadedError",
    "APIConnectionError",
    "APITimeoutError",
]


def __getattr__(name: str):
    """``ConnectionError`` and ``TimeoutError``: the deprecated names of `APIConnectionError` and `APITimeoutError`."""
    return _errors.deprecated(name, __name__)
