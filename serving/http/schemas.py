"""The HTTP bodies as typed models, from which the OpenAPI document's schemas are generated
(`components`): what each route takes and answers, with the contract's own tensor names."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import models_json_schema

from serving.protocols import open_inference
from training.interface.contract import CLASSIFY_INPUT, CLASSIFY_OUTPUTS, INPUT_NAME, OUTPUT_NAME, SIGNATURES

# A real 4x4 PNG (red), so that the examples work as they are, from the page's "Try it out" too.
EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFElEQVR42mM8IafBAANMDEgANwcANmABFoY7C7AAAAAASUVORK5CYII="

Base64 = Annotated[str, WithJsonSchema({"type": "string", "contentEncoding": "base64"})]
Pixels = Annotated[
    list,
    WithJsonSchema(
        {
            "type": "array",
            "description": "one image: [height][width] or [height][width][1|3|4] of raw 0-255 values, any size (resized on the server)",
            "items": {"type": "array"},
        }
    ),
]
Version = int | str
Datatype = Literal[tuple(open_inference.DATATYPES)]


def _example(value: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"example": value})


class Error(BaseModel):
    model_config = _example({"error": "top_k must be an integer"})
    error: str


class B64(BaseModel):
    b64: str


class ClassifyJSON(BaseModel):
    images: list[Base64 | B64] = Field(description="base64-encoded images (any format and size), or {b64: ...} objects")
    model: str | None = None
    version: Version | None = None
    top_k: int | None = Field(None, ge=1)


class ClassifyMultipart(BaseModel):
    image: list[Annotated[str, WithJsonSchema({"type": "string", "contentMediaType": "application/octet-stream"})]] | None = None
    model: str | None = None
    version: str | None = None
    top_k: str | None = None


class Class(BaseModel):
    class_index: int
    label: str
    name: str
    score: float


class ClassifyResponse(BaseModel):
    model: str
    version: int
    predictions: list[list[Class]] = Field(description="per image, best first")
    request_id: str | None = Field(None, description="with feedback on: what /feedback may name instead of the image")


class ExplainJSON(BaseModel):
    image: Base64 | B64 = Field(description="one base64-encoded image (any format and size), or a {b64: ...} object")
    model: str | None = None
    version: Version | None = None
    class_index: int | None = Field(None, ge=0, description="the class to explain; default: the image's top class")


class ExplainMultipart(BaseModel):
    image: Annotated[str, WithJsonSchema({"type": "string", "contentMediaType": "application/octet-stream"})]
    model: str | None = None
    version: str | None = None
    class_index: str | None = None


class ExplainMethod(BaseModel):
    name: Literal["occlusion"]
    grid: list[int] = Field(description="rows, columns of cells over the model's input")
    cell_pixels: list[int] = Field(description="the largest cell's height and width, in pixels of the model's input")
    occluder: str
    score: str
    forward_passes: int = Field(description="images the model ran for this explanation: grid cells + 1")


class ExplainResponse(BaseModel):
    model: str
    version: int
    class_index: int
    label: str
    name: str
    score: float = Field(description="the class's probability for the image")
    heatmap: list[list[float]] = Field(description="rows x columns of non-negative values over the model's input, summing to 1")
    informative: bool = Field(description="false when no cell lowered the class's score (the heatmap is then uniform)")
    method: ExplainMethod


class FeedbackJSON(BaseModel):
    image: Base64 | B64 | None = Field(None, description="the image (base64), or leave it out and name request_id")
    request_id: str | None = Field(None, description="the request_id of a recent /classify answer (kept IMGCLF_FEEDBACK_KEEP_S)")
    index: int | None = Field(None, ge=0, description="the image's place in that request (default 0)")
    label: str = Field(description="the correct class id: one of the model's labels")
    model: str | None = None
    version: Version | None = None


class FeedbackMultipart(BaseModel):
    image: Annotated[str, WithJsonSchema({"type": "string", "contentMediaType": "application/octet-stream"})] | None = None
    label: str
    request_id: str | None = None
    index: str | None = None
    model: str | None = None
    version: str | None = None


class FeedbackResponse(BaseModel):
    model: str
    version: int
    label: str
    predicted: str = Field(description="what the model answered for the image")
    score: float = Field(description="the probability it gave that answer")
    stored: str = Field(description="where the image is, under the feedback folder: <label>/<sha256>.<ext>")
    sha256: str
    duplicate: bool = Field(description="the image was already stored under this label")


class PredictRequest(BaseModel):
    pixels: list[Pixels] = Field(alias=INPUT_NAME)
    model: str | None = None
    version: Version | None = None


class PredictResponse(BaseModel):
    model: str
    version: int
    probabilities: list[list[float]] = Field(alias=OUTPUT_NAME, description="per image, per class")


class Model(BaseModel):
    name: str
    version: int
    versions: list[int] | None = None
    runtime: str | None = None
    input_size: list[int]
    num_classes: int


class Models(BaseModel):
    default: str
    models: list[Model]


class Reload(BaseModel):
    changes: list[str]
    models: dict[str, list[int]]


class TFServingPredictRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": f"signatures: {', '.join(SIGNATURES)}; instances of {{b64: ...}} go to classify, arrays to serving_default"}
    )
    signature_name: Literal[("", *SIGNATURES)] | None = None
    instances: list | None = Field(None, description=f"row format: pixel arrays, or {{{CLASSIFY_INPUT!r}: {{b64: ...}}}} / {{b64: ...}}")
    inputs: Any = Field(None, description="columnar format")


class TFServingPredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"description": f"serving_default: {OUTPUT_NAME} rows; classify: {', '.join(CLASSIFY_OUTPUTS)} per instance"}
    )
    predictions: list | None = None
    outputs: Any = None


class TFServingVersionStatus(BaseModel):
    version: str
    state: str
    status: dict


class TFServingStatus(BaseModel):
    model_version_status: list[TFServingVersionStatus]


class TFServingMetadata(BaseModel):
    model_spec: dict
    metadata: dict


class V2TensorParameters(BaseModel):
    binary_data_size: int | None = Field(None, ge=0)


class V2Tensor(BaseModel):
    name: str
    datatype: Datatype
    shape: list[Annotated[int, Field(ge=0)]]
    parameters: V2TensorParameters | None = None
    data: list | None = Field(None, description="row-major, flat or nested; BYTES elements as base64 strings")


class V2OutputParameters(BaseModel):
    classification: int | None = Field(None, ge=1)
    binary_data: bool | None = None


class V2RequestedOutput(BaseModel):
    name: Literal[OUTPUT_NAME]
    parameters: V2OutputParameters | None = None


class V2RequestParameters(BaseModel):
    binary_data_output: bool | None = None


class V2InferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "description": f"one input: {open_inference.IMAGES!r} (BYTES [N], encoded images) or {INPUT_NAME!r} (UINT8|FP32 [N,H,W,3])"
        }
    )
    id: str | None = None
    parameters: V2RequestParameters | None = None
    inputs: list[V2Tensor] = Field(min_length=1)
    outputs: list[V2RequestedOutput] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2Tensor]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2Duration(BaseModel):
    count: int
    ns: int


class V2InferStatistics(BaseModel):
    success: V2Duration
    fail: V2Duration
    queue: V2Duration
    compute_input: V2Duration
    compute_infer: V2Duration
    compute_output: V2Duration
    cache_hit: V2Duration
    cache_miss: V2Duration


class V2ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int = Field(description="milliseconds since the epoch; 0: never")
    inference_count: int
    execution_count: int
    inference_stats: V2InferStatistics
    batch_stats: list[dict]


class V2Statistics(BaseModel):
    model_stats: list[V2ModelStatistics]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


MODELS = (
    Error,
    ClassifyJSON,
    ClassifyMultipart,
    ClassifyResponse,
    ExplainJSON,
    ExplainMultipart,
    ExplainResponse,
    FeedbackJSON,
    FeedbackMultipart,
    FeedbackResponse,
    PredictRequest,
    PredictResponse,
    Models,
    Reload,
    TFServingPredictRequest,
    TFServingPredictResponse,
    TFServingStatus,
    TFServingMetadata,
    V2InferRequest,
    V2InferResponse,
    V2ServerMetadata,
    V2ModelMetadata,
    V2Statistics,
)


@functools.cache
def components() -> dict:
    """Every model's JSON schema (and those they refer to), keyed by name, for ``components.schemas``."""
    _, schemas = models_json_schema([(model, "validation") for model in MODELS], ref_template="#/components/schemas/{model}")
    return schemas["$defs"]
