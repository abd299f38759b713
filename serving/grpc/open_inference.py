"""The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`, the KServe v2 /
Triton API), so that tritonclient.grpc and KServe's SDK work unchanged. Inputs and outputs: see
open_inference.py; the messages: protos/inference/grpc_service.proto, through `serving.grpc.proto_pool`.

An input's elements come in ``raw_input_contents`` (what tritonclient sends) or in its typed
``contents`` (what grpcurl and hand-written JSON send). Outputs come back the same way the inputs
came: raw in ``raw_output_contents`` after raw inputs, typed in ``contents`` otherwise. The
classification count is an ``int64_param`` (or ``uint64_param``) named ``classification``.
ServerLive and ServerReady need no token, like health checks.
"""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from serving.core.errors import InvalidInput, ServingError
from serving.core.state import ServiceState
from serving.grpc.common import abort, answer, parsing, serialize
from serving.grpc.proto_pool import message
from serving.protocols import open_inference
from serving.protocols.open_inference import InputTensor, RequestedOutput, check_classification, check_datatype, check_shape

SERVICE = "inference.GRPCInferenceService"
PROTOCOL = "v2-grpc"
# The typed contents field of each datatype.
CONTENTS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _inputs(request) -> list[InputTensor]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; send one per input")
    inputs = []
    for index, tensor in enumerate(request.inputs):
        where = f"input {tensor.name!r}"
        datatype = check_datatype(tensor.datatype, where)
        shape = check_shape(list(tensor.shape), where)
        open_inference.check_input(tensor.name, datatype, shape)
        if raw:
            data = open_inference.from_raw(raw[index], datatype, shape, where)
        elif datatype in CONTENTS:
            data = open_inference.from_values(list(getattr(tensor.contents, CONTENTS[datatype])), datatype, shape, where)
        else:
            raise InvalidInput(f"{where}: {datatype} has no typed contents field; send it in raw_input_contents")
        inputs.append(InputTensor(tensor.name, datatype, shape, data))
    return inputs


def _classification(parameters, where: str) -> int | None:
    if open_inference.CLASSIFICATION not in parameters:
        return None
    parameter = parameters[open_inference.CLASSIFICATION]
    kind = parameter.WhichOneof("parameter_choice")
    if kind not in ("int64_param", "uint64_param"):
        raise InvalidInput(f"{where}: classification must be an int64_param (the number of top classes), got {kind or 'no value'}")
    return check_classification(getattr(parameter, kind), where)


class InferenceService:
    def __init__(self, state: ServiceState):
        self.state = state

    def _model(self, name: str, version: str):
        return self.state.repository.get(name, version or None)

    async def ServerLive(self, request, context):
        return message("inference.ServerLiveResponse")(live=True)

    async def ServerReady(self, request, context):
        return message("inference.ServerReadyResponse")(ready=not self.state.draining)

    async def ModelReady(self, request, context):
        try:
            self._model(request.name, request.version)
        except ServingError as error:
            await abort(context, error)
        return message("inference.ModelReadyResponse")(ready=not self.state.draining)

    async def ServerMetadata(self, request, context):
        return json_format.ParseDict(open_inference.server_metadata(), message("inference.ServerMetadataResponse")())

    async def ModelMetadata(self, request, context):
        try:
            model = self._model(request.name, request.version)
        except ServingError as error:
            await abort(context, error)
        metadata = open_inference.model_metadata(self.state.repository, model)
        return json_format.ParseDict(metadata, message("inference.ModelMetadataResponse")())

    async def ModelStatistics(self, request, context):
        try:
            answer = open_inference.model_statistics(self.state.repository, request.name or None, request.version or None)
        except ServingError as error:
            await abort(context, error)
        return json_format.ParseDict(answer, message("inference.ModelStatisticsResponse")())

    async def ModelInfer(self, request, context):
        return await answer(self._infer(request), context, request.model_name, PROTOCOL)

    async def _infer(self, request):
        model = self._model(request.model_name, request.model_version)
        inputs = _inputs(request)
        requested = [RequestedOutput(output.name, _classification(output.parameters, f"output {output.name!r}")) for output in request.outputs]
        outputs = await open_inference.infer(self.state, model, inputs, requested, PROTOCOL)
        response = message("inference.ModelInferResponse")(model_name=model.name, model_version=str(model.version), id=request.id)
        raw = bool(request.raw_input_contents)
        for tensor in outputs:
            entry = response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
            if raw:
                response.raw_output_contents.append(open_inference.to_raw(tensor))
            else:
                getattr(entry.contents, CONTENTS[tensor.datatype]).extend(tensor.data.reshape(-1).tolist())
        return response


def add_to_server(state: ServiceState, server: grpc.aio.Server) -> tuple[str, ...]:
    service = InferenceService(state)
    methods = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer", "ModelStatistics")
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(parsing(getattr(service, name), message(f"inference.{name}Request")), response_serializer=serialize)
        for name in methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    return (SERVICE,)
