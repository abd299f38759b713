"""The Open Inference Protocol v2 (KServe's v2 protocol, Triton's API): what its HTTP front door
(open_inference_rest.py) and its gRPC one (open_inference_grpc.py) share.

A model takes one input, either of

* ``images``: ``BYTES [N]``, encoded images of any size and format, decoded and resized on the
  server exactly as ``/classify`` does;
* ``pixels``: ``UINT8`` or ``FP32`` ``[N, H, W, 3]`` raw 0-255 RGB; another H x W is resized
  on the server (``[N, H, W]`` and 1 or 4 channels are taken too, as ``/predict`` takes them);

and returns ``probabilities``: ``FP32 [N, classes]``. Triton's classification extension: an output
requested with the parameter ``classification: k`` comes back as ``BYTES [N, k]``, each element
``"score:index:label"``, best first (the score printed as C's ``%f``, the label the one
``/classify`` gives).
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

from serving.core import inference
from serving.core.errors import InvalidInput
from serving.core.repository import ModelRepository, ServedModel
from serving.core.state import ServiceState
from training.interface.contract import INPUT_NAME, OUTPUT_NAME

IMAGES = "images"
INPUTS = (IMAGES, INPUT_NAME)
PIXEL_DATATYPES = ("UINT8", "FP32")
CLASSIFICATION = "classification"
EXTENSIONS = ("classification", "binary_tensor_data", "statistics")
SERVER_NAME = "imgclf"
# The protocol's datatypes and their little-endian numpy types (BYTES: object, length-prefixed).
DATATYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "onnxruntime-int8": "onnxruntime_onnx", "tensorflow": "tensorflow_savedmodel"}


@dataclasses.dataclass
class InputTensor:
    name: str
    datatype: str
    shape: list[int]
    # Numbers: an array of ``shape``; BYTES: a list of bytes objects.
    data: np.ndarray | list[bytes]


@dataclasses.dataclass
class RequestedOutput:
    name: str
    classification: int | None = None  # k, as the request gave it (checked against the model)


@dataclasses.dataclass
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    # FP32: the array; BYTES: an object array of bytes.
    data: np.ndarray


def check_datatype(datatype, where: str) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInput(f"{where}: datatype {datatype!r} is not one of the protocol's: {', '.join(DATATYPES)}")
    return datatype


def check_shape(shape, where: str) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape):
        raise InvalidInput(f"{where}: shape must be a list of sizes (integers >= 0), got {shape!r}")
    return shape


def element_count(shape: list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def from_raw(raw: bytes, datatype: str, shape: list[int], where: str) -> np.ndarray | list[bytes]:
    """A tensor's elements from its raw form (little-endian; BYTES elements each after a 4-byte
    little-endian length), checked against ``shape``."""
    count = element_count(shape)
    if datatype == "BYTES":
        elements, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise InvalidInput(f"{where}: the raw BYTES data ends inside an element's 4-byte length")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise InvalidInput(f"{where}: a BYTES element of {length} bytes runs past the raw data ({len(raw) - offset} bytes left)")
            elements.append(raw[offset : offset + length])
            offset += length
        if len(elements) != count:
            raise InvalidInput(f"{where}: {len(elements)} BYTES elements do not fill shape {shape} ({count} elements)")
        return elements
    itemsize = DATATYPES[datatype].itemsize
    if len(raw) != count * itemsize:
        raise InvalidInput(f"{where}: {len(raw)} bytes of {datatype} do not fill shape {shape} ({count} x {itemsize} bytes = {count * itemsize})")
    return np.frombuffer(raw, DATATYPES[datatype]).reshape(shape)


def to_raw(tensor: OutputTensor) -> bytes:
    if tensor.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(value)) + value for value in tensor.data.reshape(-1))
    return np.ascontiguousarray(tensor.data, DATATYPES[tensor.datatype]).tobytes()


def from_values(values: list, datatype: str, shape: list[int], where: str) -> np.ndarray | list[bytes]:
    """A tensor's elements from a flat list of values (JSON ``data``, gRPC ``contents``)."""
    count = element_count(shape)
    if len(values) != count:
        raise InvalidInput(f"{where}: {len(values)} values do not fill shape {shape} ({count} elements)")
    if datatype == "BYTES":
        return list(values)
    try:
        array = np.asarray(values, DATATYPES[datatype])
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"{where}: the values are not all {datatype}: {error}") from None
    return array.reshape(shape)


def check_input(name: str, datatype: str, shape: list[int]) -> None:
    """Refuses an input this service has no use for before its data is read."""
    where = f"input {name!r}"
    if name == IMAGES:
        if datatype != "BYTES":
            raise InvalidInput(f"{where} must be BYTES (encoded images), got {datatype}")
        if len(shape) != 1:
            raise InvalidInput(f"{where} has shape {shape}; expected [N], one encoded image each")
    elif name == INPUT_NAME:
        if datatype not in PIXEL_DATATYPES:
            raise InvalidInput(f"{where} must be {' or '.join(PIXEL_DATATYPES)} (raw 0-255 RGB), got {datatype}")
        if len(shape) not in (3, 4):
            raise InvalidInput(f"{where} has shape {shape}; expected [N, height, width, 3]")
    else:
        raise InvalidInput(f"unknown input {name!r}; the models take {IMAGES!r} (BYTES [N]) or {INPUT_NAME!r} (UINT8|FP32 [N,H,W,3])")


def check_classification(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where}: classification must be an integer (the number of top classes), got {value!r}")
    return value


async def infer(
    state: ServiceState, model: ServedModel, inputs: list[InputTensor], outputs: list[RequestedOutput], protocol: str
) -> list[OutputTensor]:
    """Runs ``model`` on the request's one input (which its front door passed through `check_input`
    before reading its data); the requested outputs (all of them if none)."""
    if len(inputs) != 1:
        raise InvalidInput(
            f"send exactly one input, {IMAGES!r} (BYTES [N] encoded images) or {INPUT_NAME!r} (UINT8|FP32 [N,H,W,3]), got {len(inputs)}"
        )
    tensor = inputs[0]
    wanted = outputs or [RequestedOutput(OUTPUT_NAME)]
    for output in wanted:  # Checked before the model runs: a bad request costs no inference.
        if output.name != OUTPUT_NAME:
            raise InvalidInput(f"unknown output {output.name!r}; {model.name} has one output, {OUTPUT_NAME!r}")
        if output.classification is not None and not 1 <= output.classification <= model.num_classes:
            raise InvalidInput(
                f"output {output.name!r}: classification must be between 1 and {model.num_classes} (the classes of {model.name}), "
                f"got {output.classification}"
            )
    if tensor.name == IMAGES:
        probabilities = await state.predict_images(model, [bytes(blob) for blob in tensor.data], protocol)
    else:
        probabilities = await state.predict_arrays(model, list(tensor.data), protocol)
    probabilities = probabilities.astype(np.float32, copy=False)
    return [_output(output, probabilities, model) for output in wanted]


def _output(output: RequestedOutput, probabilities: np.ndarray, model: ServedModel) -> OutputTensor:
    if output.classification is None:
        return OutputTensor(output.name, "FP32", list(probabilities.shape), probabilities)
    k = output.classification
    top = inference.top_classes(probabilities, model, k)
    strings = np.array([[f"{c['score']:f}:{c['class_index']}:{c['label']}".encode() for c in image] for image in top], object)
    return OutputTensor(output.name, "BYTES", [len(probabilities), k], strings.reshape(len(probabilities), k))


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imgclf")
    except PackageNotFoundError:  # A bento runs from its source, not an installed package.
        return "unknown"


def server_metadata() -> dict:
    return {"name": SERVER_NAME, "version": package_version(), "extensions": list(EXTENSIONS)}


def model_statistics(repository: ModelRepository, name: str | None, version: str | None) -> dict:
    """The statistics extension's answer: every served version of ``name`` (or of every model when
    None), or only ``version``; an unknown model or version is `ModelNotFound`."""
    from serving.core import statistics

    if name is None:
        chosen = [(model, number) for model, versions in sorted(repository.models.items()) for number in sorted(versions)]
    elif version:
        served = repository.get(name, version)
        chosen = [(served.name, served.version)]
    else:
        repository.get(name)
        chosen = [(name, number) for number in sorted(repository.models[name])]
    return {"model_stats": statistics.model_statistics(chosen)}


def model_metadata(repository: ModelRepository, model: ServedModel) -> dict:
    height, width = model.input_size
    return {
        "name": model.name,
        "versions": [str(v) for v in sorted(repository.models[model.name])],
        "platform": PLATFORMS.get(model.runtime, model.runtime),
        "inputs": [
            {"name": IMAGES, "datatype": "BYTES", "shape": [-1]},
            {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, height, width, 3]},
        ],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, model.num_classes]}],
    }
