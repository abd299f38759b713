"""TensorFlow Serving's gRPC API (`tensorflow.serving.PredictionService`: Predict, GetModelMetadata).

An unchanged TF Serving client works: ``PredictRequest.model_spec`` names the model (and
optionally ``version``) and ``signature_name``:

* ``serving_default`` (or empty, with a numeric input): input ``pixels``, DT_FLOAT (DT_UINT8,
  DT_INT32 and DT_DOUBLE are accepted too) ``[batch, height, width, channels]`` of raw 0-255
  pixels, any height and width (the server resizes); output ``probabilities`` DT_FLOAT
  ``[batch, classes]``;
* ``classify`` (or empty, with a DT_STRING input): input ``images``, DT_STRING ``[batch]`` of
  encoded image bytes; outputs ``class_index`` DT_INT32, ``label`` and ``name`` DT_STRING,
  ``score`` DT_FLOAT, each ``[batch, k]`` with k = min(5, classes).

The messages come from protos/tfserving/*.proto, through `serving.grpc.proto_pool`, so that this
module never imports TensorFlow and never clashes with it when a worker does.
"""

from __future__ import annotations

import grpc
import numpy as np

from serving.core.errors import InvalidInput, ServingError
from serving.core.state import ServiceState
from serving.grpc.common import abort, answer, parsing, serialize
from serving.grpc.proto_pool import message
from training.interface.contract import CLASSIFY_OUTPUTS, CLASSIFY_SIGNATURE, SERVING_SIGNATURE, SIGNATURES, classify_k

SERVICE = "tensorflow.serving.PredictionService"
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 19: np.float16}
DT_FLOAT, DT_INT32, DT_STRING = 1, 3, 7
VALUE_FIELDS = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 9: "int64_val", 19: "half_val"}


def to_array(tensor, key: str) -> np.ndarray:
    if tensor.dtype not in DTYPES:
        raise InvalidInput(f"input {key!r}: dtype {tensor.dtype} is not supported; send DT_FLOAT pixels or DT_STRING image bytes")
    shape = [int(dim.size) for dim in tensor.tensor_shape.dim]
    dtype = np.dtype(DTYPES[tensor.dtype]).newbyteorder("<")
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, dtype)
    elif tensor.dtype == 19:
        values = np.asarray(tensor.half_val, np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(tensor, VALUE_FIELDS[tensor.dtype]), dtype)
    if any(size < 0 for size in shape) or values.size != int(np.prod(shape)):
        raise InvalidInput(f"input {key!r} holds {values.size} values for shape {shape}")
    return values.reshape(shape)


def _tensor(array: np.ndarray, dtype: int):
    tensor = message("tensorflow.TensorProto")(dtype=dtype)
    tensor.tensor_shape.dim.extend([message("tensorflow.TensorShapeProto.Dim")(size=size) for size in array.shape])
    if dtype == DT_STRING:
        tensor.string_val.extend(value.encode() for value in array.reshape(-1))
    else:
        tensor.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return tensor


class PredictionService:
    def __init__(self, state: ServiceState):
        self.state = state

    def _model(self, spec):
        version = spec.version.value if spec.HasField("version") else None
        if spec.WhichOneof("version_choice") == "version_label":
            raise InvalidInput("version labels are not supported; use a version number")
        return self.state.repository.get(spec.name or None, version)

    async def Predict(self, request, context):
        return await answer(self._predict(request), context, request.model_spec.name, "tf-serving-grpc")

    async def _predict(self, request):
        model = self._model(request.model_spec)
        signature = request.model_spec.signature_name
        if len(request.inputs) != 1:
            raise InvalidInput(f"send one input tensor (pixels or images), got {sorted(request.inputs) or 'none'}")
        key, tensor = next(iter(request.inputs.items()))
        if not signature:
            signature = CLASSIFY_SIGNATURE if tensor.dtype == DT_STRING else SERVING_SIGNATURE
        if signature not in SIGNATURES:
            raise InvalidInput(f"signature {signature!r} not found; signatures: {', '.join(SIGNATURES)}")
        response = message("tensorflow.serving.PredictResponse")()
        response.model_spec.name, response.model_spec.signature_name = model.name, signature
        response.model_spec.version.value = model.version
        if signature == SERVING_SIGNATURE:
            if tensor.dtype == DT_STRING:
                raise InvalidInput("serving_default takes numeric pixels; send image bytes to the classify signature")
            pixels = to_array(tensor, key)
            if pixels.ndim not in (3, 4):
                raise InvalidInput(f"input {key!r} has shape {list(pixels.shape)}; expected [batch, height, width(, channels)]")
            outputs = {
                "probabilities": _tensor((await self.state.predict_arrays(model, list(pixels), "tf-serving-grpc")).astype(np.float32), DT_FLOAT)
            }
        else:
            if tensor.dtype != DT_STRING:
                raise InvalidInput("classify takes DT_STRING encoded image bytes")
            top = await self.state.classify(model, list(tensor.string_val), classify_k(model.num_classes), "tf-serving-grpc")
            types = dict(zip(CLASSIFY_OUTPUTS, ((np.int32, DT_INT32), (object, DT_STRING), (object, DT_STRING), (np.float32, DT_FLOAT))))
            outputs = {
                key: _tensor(np.array([[entry[key] for entry in image] for image in top], dtype), code) for key, (dtype, code) in types.items()
            }
        wanted = set(request.output_filter) or set(outputs)
        unknown = wanted - set(outputs)
        if unknown:
            raise InvalidInput(f"output_filter names unknown outputs {sorted(unknown)}; outputs: {sorted(outputs)}")
        for name in wanted:
            response.outputs[name].CopyFrom(outputs[name])
        return response

    async def GetModelMetadata(self, request, context):
        from google.protobuf import json_format

        try:
            model = self._model(request.model_spec)
            fields = set(request.metadata_field) or {"signature_def"}
            if fields != {"signature_def"}:
                raise InvalidInput(f"metadata_field must be signature_def, got {sorted(fields)}")
            signature_map = json_format.ParseDict(
                {"signature_def": model.signature_defs}, message("tensorflow.serving.SignatureDefMap")(), ignore_unknown_fields=True
            )
        except ServingError as error:
            await abort(context, error)
        response = message("tensorflow.serving.GetModelMetadataResponse")()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        packed = response.metadata["signature_def"]
        packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        packed.value = signature_map.SerializeToString()
        return response


def add_to_server(state: ServiceState, server: grpc.aio.Server) -> tuple[str, ...]:
    service = PredictionService(state)
    handlers = {
        "Predict": grpc.unary_unary_rpc_method_handler(
            parsing(service.Predict, message("tensorflow.serving.PredictRequest")), response_serializer=serialize
        ),
        "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
            parsing(service.GetModelMetadata, message("tensorflow.serving.GetModelMetadataRequest")), response_serializer=serialize
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    return (SERVICE,)
