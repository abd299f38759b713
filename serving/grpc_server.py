"""The gRPC server that runs inside each API worker (grpc.aio, on the worker's event loop).

It serves `imgclf.v1.ClassifierService` (protos/imgclf/v1/classifier.proto), TensorFlow Serving's
`tensorflow.serving.PredictionService` (see tf_serving_grpc.py), `grpc.health.v1` and server
reflection, on one port shared by every worker (SO_REUSEPORT). BentoML's own ``serve-grpc``
cannot be used: its stubs do not import under protobuf 6+, which TensorFlow 2.21 requires.
"""

from __future__ import annotations

import logging
import time

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from serving import guards, inference, metrics
from serving.errors import InvalidInput, Overloaded, ServingError, Unauthenticated
from serving.repository import ServedModel
from serving.state import ServiceState

log = logging.getLogger("imgclf.serving")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ClassifierService"].full_name


async def abort(context, error: ServingError) -> None:
    """Ends the call with the error's code and message; an overload also says when to retry."""
    trailing = (("retry-after", str(error.retry_after)),) if isinstance(error, Overloaded) else ()
    await context.abort(error.grpc_code, error.message, trailing_metadata=trailing)


class Guard(grpc.aio.ServerInterceptor):
    """Every call but health and reflection: the API token (``authorization`` metadata) is checked,
    and the call's own deadline becomes the request's (`guards.DEADLINE`)."""

    def __init__(self, settings):
        self.settings = settings

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(guards.OPEN_GRPC_SERVICES):
            return handler
        authorization = next((value for key, value in details.invocation_metadata or () if key == "authorization"), None)
        try:
            guards.check_token(self.settings, authorization)
        except Unauthenticated as error:
            return _refusal(handler, error)
        kind = _kind(handler)
        return handler._replace(**{kind: _with_deadline(getattr(handler, kind), handler.response_streaming)})


def _refusal(handler, error: Unauthenticated):
    """``handler`` with its behaviour replaced by an UNAUTHENTICATED answer."""
    async def refuse(request, context):
        metrics.record_error(None, "grpc", error)
        await abort(context, error)

    async def refuse_stream(request, context):
        await refuse(request, context)
        yield  # pragma: no cover (never reached: abort raises)

    return handler._replace(**{_kind(handler): refuse_stream if handler.response_streaming else refuse})


def _kind(handler) -> str:
    return f"{'stream' if handler.request_streaming else 'unary'}_{'stream' if handler.response_streaming else 'unary'}"


def _with_deadline(behavior, streaming: bool):
    def begin(context) -> None:
        remaining = context.time_remaining()
        if remaining is not None:
            guards.DEADLINE.set(time.monotonic() + remaining)

    if streaming:
        async def stream(request, context):
            begin(context)
            async for response in behavior(request, context):
                yield response
        return stream

    async def unary(request, context):
        begin(context)
        return await behavior(request, context)
    return unary


def _array(message: pb.PixelArray, index: int) -> np.ndarray:
    shape = tuple(int(v) for v in message.shape)
    if not shape or any(v <= 0 for v in shape):
        raise InvalidInput(f"arrays[{index}] has shape {list(shape)}; expected [height, width] or [height, width, 1|3|4]")
    which = message.WhichOneof("values")
    if which == "uint8_values":
        values = np.frombuffer(message.uint8_values, np.uint8)
    elif which == "float_values":
        values = np.asarray(message.float_values.values, np.float32)
    else:
        raise InvalidInput(f"arrays[{index}] holds no values (set uint8_values or float_values)")
    if values.size != int(np.prod(shape)):
        raise InvalidInput(f"arrays[{index}] holds {values.size} values, but its shape {list(shape)} needs {int(np.prod(shape))}")
    return values.reshape(shape)


def metadata(model: ServedModel, versions: list[int]) -> pb.ModelMetadata:
    card = model.card
    metrics = {k: float(v) for k, v in card.get("metrics", {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    preprocessing = card.get("preprocessing", {})
    return pb.ModelMetadata(
        name=model.name, version=model.version, versions=versions, input_height=model.input_size[0],
        input_width=model.input_size[1], num_classes=model.num_classes, labels=model.labels, names=model.names,
        task=card.get("task", {}).get("name", ""), dataset=card.get("dataset", {}).get("source", ""), runtime=model.runtime,
        decode=preprocessing.get("decode", ""), resize=preprocessing.get("resize", ""),
        normalization=preprocessing.get("normalization", ""), metrics=metrics)


class ClassifierServicer(pb_grpc.ClassifierServiceServicer):
    def __init__(self, state: ServiceState):
        self.state = state

    async def _classify(self, request: pb.ClassifyRequest) -> pb.ClassifyResponse:
        state = self.state
        model = state.repository.get(request.model_spec.name or None, request.model_spec.version or None)
        top_k = inference.check_top_k(request.top_k or None, model, state.settings)
        if request.images and request.arrays:
            raise InvalidInput("set either images or arrays, not both")
        if request.arrays:
            arrays = [_array(message, i) for i, message in enumerate(request.arrays)]
            top = inference.top_classes(await state.predict_arrays(model, arrays, "grpc"), model, top_k)
        else:
            top = await state.classify(model, list(request.images), top_k, "grpc")
        return pb.ClassifyResponse(
            model_spec=pb.ModelSpec(name=model.name, version=model.version), request_id=request.request_id,
            results=[pb.ImageClassifications(classes=[pb.Classification(**entry) for entry in image]) for image in top])

    async def Classify(self, request, context):
        try:
            return await self._classify(request)
        except ServingError as error:
            metrics.record_error(request.model_spec.name, "grpc", error)
            await abort(context, error)

    async def ClassifyStream(self, request_iterator, context):
        async for request in request_iterator:
            try:
                yield await self._classify(request)
            except ServingError as error:
                metrics.record_error(request.model_spec.name, "grpc", error)
                yield pb.ClassifyResponse(request_id=request.request_id, error=error.message)

    async def ListModels(self, request, context):
        repository = self.state.repository
        return pb.ListModelsResponse(default_model=repository.default, models=[
            metadata(repository.get(name), sorted(versions)) for name, versions in sorted(repository.models.items())])

    async def GetModelMetadata(self, request, context):
        try:
            model = self.state.repository.get(request.model_spec.name or None, request.model_spec.version or None)
        except ServingError as error:
            await abort(context, error)
        return metadata(model, sorted(self.state.repository.models[model.name]))


def parsing(handler, message_class, streaming: bool = False):
    """Wraps a handler to take raw bytes and parse them itself, so that a malformed message gets
    INVALID_ARGUMENT (grpc's own deserializer failure would be INTERNAL)."""
    from google.protobuf.message import DecodeError

    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            raise InvalidInput(f"malformed {message_class.DESCRIPTOR.full_name} message: {error}") from None

    if streaming:
        async def stream(request_iterator, context):
            async def parsed():
                async for data in request_iterator:
                    try:
                        yield parse(data)
                    except InvalidInput as error:
                        await abort(context, error)
            async for response in handler(parsed(), context):
                yield response
        return stream

    async def unary(data, context):
        try:
            request = parse(data)
        except InvalidInput as error:
            await abort(context, error)
        return await handler(request, context)
    return unary


def add_classifier_service(state: ServiceState, server: grpc.aio.Server) -> None:
    servicer = ClassifierServicer(state)
    serialize = lambda response: response.SerializeToString()  # noqa: E731
    handlers = {
        "Classify": grpc.unary_unary_rpc_method_handler(
            parsing(servicer.Classify, pb.ClassifyRequest), response_serializer=serialize),
        "ClassifyStream": grpc.stream_stream_rpc_method_handler(
            parsing(servicer.ClassifyStream, pb.ClassifyRequest, streaming=True), response_serializer=serialize),
        "ListModels": grpc.unary_unary_rpc_method_handler(
            parsing(servicer.ListModels, pb.ListModelsRequest), response_serializer=serialize),
        "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
            parsing(servicer.GetModelMetadata, pb.GetModelMetadataRequest), response_serializer=serialize),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


async def start(state: ServiceState, port: int) -> grpc.aio.Server:
    """Starts the gRPC server on ``port`` (shared between workers); returns it, serving."""
    from serving import tf_serving_grpc

    limit = state.settings.max_body_bytes
    server = grpc.aio.server(interceptors=(Guard(state.settings),), options=[
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
    ])
    add_classifier_service(state, server)
    tf_serving_names = tf_serving_grpc.add_to_server(state, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (SERVICE_NAME, *tf_serving_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=tf_serving_grpc.reflection_pool())
    settings = state.settings
    if settings.tls:
        with open(settings.tls_key_file, "rb") as key, open(settings.tls_cert_file, "rb") as cert:
            credentials = grpc.ssl_server_credentials(((key.read(), cert.read()),))
        bound = server.add_secure_port(f"[::]:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"[::]:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen for gRPC on port {port}")
    await server.start()
    server.health, server.service_names = health_servicer, ("", SERVICE_NAME, *tf_serving_names)  # What a drain marks NOT_SERVING.
    for name in server.service_names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC serving on port %d%s: %s", bound, " (TLS)" if settings.tls else "", ", ".join(names))
    return server
