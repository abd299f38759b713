"""The gRPC clients: `GrpcClient` (sync) and `AsyncGrpcClient` (grpc.aio), the same methods as the
HTTP clients. They speak the service's own API, `imgclf.v1.ClassifierService`."""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imgclf_client import errors, inputs
from imgclf_client._proto.imgclf.v1 import classifier_pb2 as pb
from imgclf_client._proto.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from imgclf_client.lifecycle import AsyncClosing, Closing
from imgclf_client.results import Classification, ClassifyResult, ExplainResult, FeedbackResult, Health, ModelInfo, PredictResult
from imgclf_client.retry import RetryPolicy, policy

DEFAULT_TARGET = "localhost:50051"
# Large enough for a batch of big images; the server applies its own limits.
MESSAGE_LIMITS = [("grpc.max_send_message_length", 64 * 1024 * 1024), ("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def _credentials(tls: bool, ca_file: str | None) -> grpc.ChannelCredentials | None:
    if not tls and not ca_file:
        return None
    root = None
    if ca_file:
        try:
            with open(ca_file, "rb") as opened:
                root = opened.read()
        except OSError as error:
            raise errors.InvalidInputError(f"cannot read the CA file {ca_file}: {error.strerror or error}") from None
    return grpc.ssl_channel_credentials(root_certificates=root)


def _metadata(metadata: dict | None, token: str | None) -> tuple:
    pairs = [(key.lower(), value) for key, value in (metadata or {}).items()]
    if token:
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple(pairs)


def _error(error: grpc.RpcError, target: str) -> errors.ImgclfError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    if code == grpc.StatusCode.UNAVAILABLE and ("connect" in details.lower() or "failed to" in details.lower()):
        return errors.APIConnectionError(f"cannot reach {target}: {details}", code.name)
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    hint = next((value for key, value in trailing or () if key == "retry-after"), None)
    return errors.for_grpc_code(code.name, f"gRPC {code.name}: {details}", hint)


def _spec(model: str | None, version: int | None) -> pb.ModelSpec:
    return pb.ModelSpec(name=model or "", version=int(version or 0))


def _classify_request(images, model, version, top_k) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(model_spec=_spec(model, version), images=inputs.encode_all(images), top_k=inputs.check_top_k(top_k))


def _explain_request(image, model, version, class_index) -> pb.ExplainRequest:
    class_index = inputs.check_class_index(class_index)
    request = pb.ExplainRequest(model_spec=_spec(model, version), image=inputs.one_image(image))
    if class_index is not None:
        request.class_index = class_index
    return request


def _explained(response: pb.ExplainResponse) -> ExplainResult:
    c, m = response.explained, response.method
    return ExplainResult(
        response.model_spec.name,
        int(response.model_spec.version),
        Classification(c.class_index, c.label, c.name, float(c.score)),
        np.asarray(response.heatmap, np.float32).reshape(response.heatmap_rows, response.heatmap_cols),
        bool(response.informative),
        {
            "name": m.name,
            "grid": [m.grid_rows, m.grid_cols],
            "cell_pixels": list(m.cell_pixels),
            "occluder": m.occluder,
            "score": m.score,
            "forward_passes": m.forward_passes,
        },
    )


def _arrays(pixels) -> list[pb.PixelArray]:
    arrays = []
    for array in inputs.pixel_list(pixels):
        if array.dtype == np.uint8:
            arrays.append(pb.PixelArray(shape=array.shape, uint8_values=array.tobytes()))
        else:
            arrays.append(pb.PixelArray(shape=array.shape, float_values=pb.FloatValues(values=np.asarray(array, np.float32).ravel())))
    return arrays


def _classified(response: pb.ClassifyResponse) -> ClassifyResult:
    return ClassifyResult(
        response.model_spec.name,
        int(response.model_spec.version),
        [[Classification(c.class_index, c.label, c.name, float(c.score)) for c in image.classes] for image in response.results],
        response.server_request_id or None,
    )


def _feedback_request(image, label, model, version, request_id, index) -> pb.FeedbackRequest:
    blob = inputs.feedback_image(image, request_id)
    request = pb.FeedbackRequest(model_spec=_spec(model, version), label=inputs.check_label(label))
    if blob is not None:
        request.image = blob
    else:
        request.request_id, request.index = str(request_id), int(index)
    return request


def _fed_back(response: pb.FeedbackResponse) -> FeedbackResult:
    return FeedbackResult(
        response.model_spec.name,
        int(response.model_spec.version),
        response.label,
        response.predicted,
        float(response.score),
        response.stored,
        response.sha256,
        bool(response.duplicate),
    )


def _predicted(response: pb.PredictResponse) -> PredictResult:
    probabilities = np.array([np.asarray(row.values, np.float32) for row in response.probabilities], np.float32)
    return PredictResult(response.model_spec.name, int(response.model_spec.version), probabilities)


def _unimplemented(error: errors.ImgclfError) -> bool:
    """A server from before imgclf.v1 had Predict: the SDK then asks Classify for every class."""
    return error.status == "UNIMPLEMENTED"


def _probabilities(response: pb.ClassifyResponse, num_classes: int) -> PredictResult:
    # Every class was asked for, so each image's scores cover the whole output: put them in order.
    probabilities = np.zeros((len(response.results), num_classes), np.float32)
    for row, image in zip(probabilities, response.results):
        for c in image.classes:
            row[c.class_index] = c.score
    return PredictResult(response.model_spec.name, int(response.model_spec.version), probabilities)


def model_info(meta: pb.ModelMetadata, default: str | None = None) -> ModelInfo:
    preprocessing = {key: value for key, value in (("decode", meta.decode), ("resize", meta.resize), ("normalization", meta.normalization)) if value}
    return ModelInfo(
        name=meta.name,
        version=int(meta.version),
        versions=[int(v) for v in meta.versions],
        input_size=(int(meta.input_height), int(meta.input_width)),
        num_classes=int(meta.num_classes),
        labels=list(meta.labels),
        names=list(meta.names),
        task=meta.task,
        dataset=meta.dataset,
        runtime=meta.runtime,
        preprocessing=preprocessing,
        metrics=dict(meta.metrics),
        default=meta.name == default,
    )


class _Connection:
    """The channel settings both gRPC clients take; ``_grpc`` makes the channel (grpc or grpc.aio)."""

    _grpc = grpc

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = 30.0,
        retries: int | RetryPolicy = 3,
        metadata: dict | None = None,
        token: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
    ):
        self.target, self.timeout, self.retry = target, timeout, policy(retries)
        self._metadata = _metadata(metadata, token)
        credentials = _credentials(tls, ca_file)
        channels = self._grpc
        self._channel = (
            channels.secure_channel(target, credentials, MESSAGE_LIMITS) if credentials else channels.insecure_channel(target, MESSAGE_LIMITS)
        )
        self._stub = pb_grpc.ClassifierServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)


class GrpcClient(_Connection, Closing):
    """Calls the service over gRPC.

    >>> with GrpcClient("localhost:50051") as client:                # doctest: +SKIP
    ...     result = client.classify("cat.jpg")
    """

    def _call(self, method, request):
        def once():
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                raise _error(error, self.target) from None

        return self.retry.call(once)

    def classify(self, images, model: str | None = None, version: int | None = None, top_k: int = 5) -> ClassifyResult:
        return _classified(self._call(self._stub.Classify, _classify_request(images, model, version, top_k)))

    def predict(self, pixels, model: str | None = None, version: int | None = None) -> PredictResult:
        try:
            return _predicted(self._call(self._stub.Predict, pb.PredictRequest(model_spec=_spec(model, version), arrays=_arrays(pixels))))
        except errors.ServerError as error:
            if not _unimplemented(error):
                raise
        info = self.model(model, version) if model else next(m for m in self.models() if m.default)
        request = pb.ClassifyRequest(model_spec=_spec(info.name, info.version), arrays=_arrays(pixels), top_k=info.num_classes)
        return _probabilities(self._call(self._stub.Classify, request), info.num_classes)

    def explain(self, image, model: str | None = None, class_index: int | None = None, version: int | None = None) -> ExplainResult:
        """The heatmap of what ``class_index`` (default: the top class) depends on in ``image``."""
        return _explained(self._call(self._stub.Explain, _explain_request(image, model, version, class_index)))

    def feedback(
        self, image=None, label: str = "", model: str | None = None, version: int | None = None, request_id: str | None = None, index: int = 0
    ) -> FeedbackResult:
        """Sends ``image`` (or names a recent Classify's ``request_id``) with its correct ``label``; the server stores it for retraining."""
        return _fed_back(self._call(self._stub.Feedback, _feedback_request(image, label, model, version, request_id, index)))

    def models(self) -> list[ModelInfo]:
        answer = self._call(self._stub.ListModels, pb.ListModelsRequest())
        return [model_info(meta, answer.default_model) for meta in answer.models]

    def model(self, name: str, version: int | None = None) -> ModelInfo:
        return model_info(self._call(self._stub.GetModelMetadata, pb.GetModelMetadataRequest(model_spec=_spec(name, version))))

    def health(self) -> Health:
        try:
            status = self._health.Check(health_pb2.HealthCheckRequest(), timeout=self.timeout, metadata=self._metadata).status
        except grpc.RpcError:
            return Health(live=False, ready=False)
        return Health(live=True, ready=status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcClient(_Connection, AsyncClosing):
    """`GrpcClient` for asyncio (grpc.aio): the same methods, awaited."""

    _grpc = grpc.aio

    async def _call(self, method, request):
        async def once():
            try:
                return await method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                raise _error(error, self.target) from None

        return await self.retry.call_async(once)

    async def classify(self, images, model: str | None = None, version: int | None = None, top_k: int = 5) -> ClassifyResult:
        return _classified(await self._call(self._stub.Classify, _classify_request(images, model, version, top_k)))

    async def predict(self, pixels, model: str | None = None, version: int | None = None) -> PredictResult:
        request = pb.PredictRequest(model_spec=_spec(model, version), arrays=_arrays(pixels))
        try:
            return _predicted(await self._call(self._stub.Predict, request))
        except errors.ServerError as error:
            if not _unimplemented(error):
                raise
        info = await self.model(model, version) if model else next(m for m in await self.models() if m.default)
        request = pb.ClassifyRequest(model_spec=_spec(info.name, info.version), arrays=_arrays(pixels), top_k=info.num_classes)
        return _probabilities(await self._call(self._stub.Classify, request), info.num_classes)

    async def explain(self, image, model: str | None = None, class_index: int | None = None, version: int | None = None) -> ExplainResult:
        return _explained(await self._call(self._stub.Explain, _explain_request(image, model, version, class_index)))

    async def feedback(
        self, image=None, label: str = "", model: str | None = None, version: int | None = None, request_id: str | None = None, index: int = 0
    ) -> FeedbackResult:
        return _fed_back(await self._call(self._stub.Feedback, _feedback_request(image, label, model, version, request_id, index)))

    async def models(self) -> list[ModelInfo]:
        answer = await self._call(self._stub.ListModels, pb.ListModelsRequest())
        return [model_info(meta, answer.default_model) for meta in answer.models]

    async def model(self, name: str, version: int | None = None) -> ModelInfo:
        return model_info(await self._call(self._stub.GetModelMetadata, pb.GetModelMetadataRequest(model_spec=_spec(name, version))))

    async def health(self) -> Health:
        try:
            status = (await self._health.Check(health_pb2.HealthCheckRequest(), timeout=self.timeout, metadata=self._metadata)).status
        except grpc.RpcError:
            return Health(live=False, ready=False)
        return Health(live=True, ready=status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close()
