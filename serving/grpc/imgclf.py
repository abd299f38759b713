"""`imgclf.v1.ClassifierService` (protos/imgclf/v1/classifier.proto): its servicer and the
conversions between its messages and the service's requests and answers."""

from __future__ import annotations

import grpc
import numpy as np

from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from serving.core import explain as explain_method
from serving.core import inference, metrics
from serving.core.errors import InvalidInput, ServingError
from serving.core.repository import ServedModel
from serving.core.state import ServiceState
from serving.grpc.common import abort, answer, parsing, serialize

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ClassifierService"].full_name
PROTOCOL = "grpc"  # The protocol label of its metrics.


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
        name=model.name,
        version=model.version,
        versions=versions,
        input_height=model.input_size[0],
        input_width=model.input_size[1],
        num_classes=model.num_classes,
        labels=model.labels,
        names=model.names,
        task=card.get("task", {}).get("name", ""),
        dataset=card.get("dataset", {}).get("source", ""),
        runtime=model.runtime,
        decode=preprocessing.get("decode", ""),
        resize=preprocessing.get("resize", ""),
        normalization=preprocessing.get("normalization", ""),
        metrics=metrics,
    )


class ClassifierServicer(pb_grpc.ClassifierServiceServicer):
    def __init__(self, state: ServiceState):
        self.state = state

    def _model(self, spec: pb.ModelSpec) -> ServedModel:
        return self.state.repository.get(spec.name or None, spec.version or None)

    async def _probabilities(self, model: ServedModel, request: pb.ClassifyRequest | pb.PredictRequest) -> np.ndarray:
        """The probabilities of a request's images or arrays (Classify and Predict take the same inputs)."""
        if request.images and request.arrays:
            raise InvalidInput("set either images or arrays, not both")
        if request.arrays:
            arrays = [_array(message, i) for i, message in enumerate(request.arrays)]
            return await self.state.predict_arrays(model, arrays, PROTOCOL)
        return await self.state.predict_images(model, list(request.images), PROTOCOL)

    async def _classify(self, request: pb.ClassifyRequest) -> pb.ClassifyResponse:
        model = self._model(request.model_spec)
        top_k = inference.check_top_k(request.top_k or None, model, self.state.settings)
        probabilities = await self._probabilities(model, request)
        top = inference.top_classes(probabilities, model, top_k)
        kept = self.state.remember(model, list(request.images), probabilities) if request.images else None
        return pb.ClassifyResponse(
            model_spec=pb.ModelSpec(name=model.name, version=model.version),
            request_id=request.request_id,
            results=[pb.ImageClassifications(classes=[pb.Classification(**entry) for entry in image]) for image in top],
            server_request_id=kept or "",
        )

    async def Classify(self, request, context):
        return await answer(self._classify(request), context, request.model_spec.name, PROTOCOL)

    async def ClassifyStream(self, request_iterator, context):
        async for request in request_iterator:
            try:
                yield await self._classify(request)
            except ServingError as error:
                metrics.record_error(request.model_spec.name, PROTOCOL, error)
                yield pb.ClassifyResponse(request_id=request.request_id, error=error.message)

    async def _predict(self, request: pb.PredictRequest) -> pb.PredictResponse:
        model = self._model(request.model_spec)
        probabilities = await self._probabilities(model, request)
        return pb.PredictResponse(
            model_spec=pb.ModelSpec(name=model.name, version=model.version),
            probabilities=[pb.Probabilities(values=row) for row in np.asarray(probabilities, np.float32)],
            labels=model.labels,
            request_id=request.request_id,
        )

    async def Predict(self, request, context):
        return await answer(self._predict(request), context, request.model_spec.name, PROTOCOL)

    async def _explain(self, request: pb.ExplainRequest) -> pb.ExplainResponse:
        model = self._model(request.model_spec)
        class_index = request.class_index if request.HasField("class_index") else None
        class_index = explain_method.check_class_index(class_index, model.num_classes, model.name)
        explain_method.check_one_image(1 if request.image else 0, self.state.settings)
        result = await self.state.explain(model, request.image, class_index, PROTOCOL)
        method, heatmap = result["method"], result["heatmap"]
        return pb.ExplainResponse(
            model_spec=pb.ModelSpec(name=model.name, version=model.version),
            explained=pb.Classification(class_index=result["class_index"], label=result["label"], name=result["name"], score=result["score"]),
            heatmap_rows=heatmap.shape[0],
            heatmap_cols=heatmap.shape[1],
            heatmap=heatmap.reshape(-1).astype(np.float32),
            informative=result["informative"],
            method=pb.ExplainMethod(
                name=method["name"],
                grid_rows=method["grid"][0],
                grid_cols=method["grid"][1],
                cell_pixels=method["cell_pixels"],
                occluder=method["occluder"],
                score=method["score"],
                forward_passes=method["forward_passes"],
            ),
            request_id=request.request_id,
        )

    async def _feedback(self, request: pb.FeedbackRequest) -> pb.FeedbackResponse:
        if request.image and request.request_id:
            raise InvalidInput("send either the image or the request_id of the request that classified it, not both")
        if not request.label:
            raise InvalidInput("feedback needs label: the correct class id, one of the model's labels")
        spec = request.model_spec
        model = self._model(spec) if spec.name or spec.version or not request.request_id else None
        result = await self.state.give_feedback(
            model, request.label, PROTOCOL, blob=request.image or None, request_id=request.request_id or None, index=request.index
        )
        return pb.FeedbackResponse(
            model_spec=pb.ModelSpec(name=result["model"], version=result["version"]),
            stored=result["stored"],
            sha256=result["sha256"],
            label=result["label"],
            predicted=result["predicted"],
            score=result["score"],
            duplicate=result["duplicate"],
        )

    async def Feedback(self, request, context):
        return await answer(self._feedback(request), context, request.model_spec.name, PROTOCOL)

    async def Explain(self, request, context):
        return await answer(self._explain(request), context, request.model_spec.name, PROTOCOL)

    async def ListModels(self, request, context):
        repository = self.state.repository
        return pb.ListModelsResponse(
            default_model=repository.default,
            models=[metadata(repository.get(name), sorted(versions)) for name, versions in sorted(repository.models.items())],
        )

    async def GetModelMetadata(self, request, context):
        try:
            model = self._model(request.model_spec)
        except ServingError as error:
            await abort(context, error)
        return metadata(model, sorted(self.state.repository.models[model.name]))


def add_to_server(state: ServiceState, server: grpc.aio.Server) -> None:
    servicer = ClassifierServicer(state)
    handlers = {
        "Classify": grpc.unary_unary_rpc_method_handler(parsing(servicer.Classify, pb.ClassifyRequest), response_serializer=serialize),
        "ClassifyStream": grpc.stream_stream_rpc_method_handler(
            parsing(servicer.ClassifyStream, pb.ClassifyRequest, streaming=True), response_serializer=serialize
        ),
        "ListModels": grpc.unary_unary_rpc_method_handler(parsing(servicer.ListModels, pb.ListModelsRequest), response_serializer=serialize),
        "Predict": grpc.unary_unary_rpc_method_handler(parsing(servicer.Predict, pb.PredictRequest), response_serializer=serialize),
        "Explain": grpc.unary_unary_rpc_method_handler(parsing(servicer.Explain, pb.ExplainRequest), response_serializer=serialize),
        "Feedback": grpc.unary_unary_rpc_method_handler(parsing(servicer.Feedback, pb.FeedbackRequest), response_serializer=serialize),
        "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
            parsing(servicer.GetModelMetadata, pb.GetModelMetadataRequest), response_serializer=serialize
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
