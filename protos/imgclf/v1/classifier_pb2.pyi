from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelSpec(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class PixelArray(_message.Message):
    __slots__ = ("shape", "uint8_values", "float_values")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    UINT8_VALUES_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUES_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    uint8_values: bytes
    float_values: FloatValues
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., uint8_values: _Optional[bytes] = ..., float_values: _Optional[_Union[FloatValues, _Mapping]] = ...) -> None: ...

class FloatValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("model_spec", "images", "arrays", "top_k", "request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ARRAYS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    images: _containers.RepeatedScalarFieldContainer[bytes]
    arrays: _containers.RepeatedCompositeFieldContainer[PixelArray]
    top_k: int
    request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., images: _Optional[_Iterable[bytes]] = ..., arrays: _Optional[_Iterable[_Union[PixelArray, _Mapping]]] = ..., top_k: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("class_index", "label", "name", "score")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    label: str
    name: str
    score: float
    def __init__(self, class_index: _Optional[int] = ..., label: _Optional[str] = ..., name: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class ImageClassifications(_message.Message):
    __slots__ = ("classes",)
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, classes: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("model_spec", "results", "request_id", "error", "server_request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SERVER_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    results: _containers.RepeatedCompositeFieldContainer[ImageClassifications]
    request_id: str
    error: str
    server_request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., results: _Optional[_Iterable[_Union[ImageClassifications, _Mapping]]] = ..., request_id: _Optional[str] = ..., error: _Optional[str] = ..., server_request_id: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_spec", "images", "arrays", "request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    ARRAYS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    images: _containers.RepeatedScalarFieldContainer[bytes]
    arrays: _containers.RepeatedCompositeFieldContainer[PixelArray]
    request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., images: _Optional[_Iterable[bytes]] = ..., arrays: _Optional[_Iterable[_Union[PixelArray, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Probabilities(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_spec", "probabilities", "labels", "request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    probabilities: _containers.RepeatedCompositeFieldContainer[Probabilities]
    labels: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., probabilities: _Optional[_Iterable[_Union[Probabilities, _Mapping]]] = ..., labels: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelMetadata]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelMetadata, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class GetModelMetadataRequest(_message.Message):
    __slots__ = ("model_spec",)
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ...) -> None: ...

class ModelMetadata(_message.Message):
    __slots__ = ("name", "version", "versions", "input_height", "input_width", "num_classes", "labels", "names", "task", "dataset", "runtime", "decode", "resize", "normalization", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    DECODE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    NORMALIZATION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    versions: _containers.RepeatedScalarFieldContainer[int]
    input_height: int
    input_width: int
    num_classes: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    task: str
    dataset: str
    runtime: str
    decode: str
    resize: str
    normalization: str
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., versions: _Optional[_Iterable[int]] = ..., input_height: _Optional[int] = ..., input_width: _Optional[int] = ..., num_classes: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., task: _Optional[str] = ..., dataset: _Optional[str] = ..., runtime: _Optional[str] = ..., decode: _Optional[str] = ..., resize: _Optional[str] = ..., normalization: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("model_spec", "image", "class_index", "request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    image: bytes
    class_index: int
    request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., image: _Optional[bytes] = ..., class_index: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExplainMethod(_message.Message):
    __slots__ = ("name", "grid_rows", "grid_cols", "cell_pixels", "occluder", "score", "forward_passes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GRID_ROWS_FIELD_NUMBER: _ClassVar[int]
    GRID_COLS_FIELD_NUMBER: _ClassVar[int]
    CELL_PIXELS_FIELD_NUMBER: _ClassVar[int]
    OCCLUDER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    grid_rows: int
    grid_cols: int
    cell_pixels: _containers.RepeatedScalarFieldContainer[int]
    occluder: str
    score: str
    forward_passes: int
    def __init__(self, name: _Optional[str] = ..., grid_rows: _Optional[int] = ..., grid_cols: _Optional[int] = ..., cell_pixels: _Optional[_Iterable[int]] = ..., occluder: _Optional[str] = ..., score: _Optional[str] = ..., forward_passes: _Optional[int] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("model_spec", "explained", "heatmap_rows", "heatmap_cols", "heatmap", "informative", "method", "request_id")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_ROWS_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_COLS_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_FIELD_NUMBER: _ClassVar[int]
    INFORMATIVE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    explained: Classification
    heatmap_rows: int
    heatmap_cols: int
    heatmap: _containers.RepeatedScalarFieldContainer[float]
    informative: bool
    method: ExplainMethod
    request_id: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., explained: _Optional[_Union[Classification, _Mapping]] = ..., heatmap_rows: _Optional[int] = ..., heatmap_cols: _Optional[int] = ..., heatmap: _Optional[_Iterable[float]] = ..., informative: _Optional[bool] = ..., method: _Optional[_Union[ExplainMethod, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("model_spec", "image", "request_id", "index", "label")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    image: bytes
    request_id: str
    index: int
    label: str
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., image: _Optional[bytes] = ..., request_id: _Optional[str] = ..., index: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("model_spec", "stored", "sha256", "label", "predicted", "score", "duplicate")
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    model_spec: ModelSpec
    stored: str
    sha256: str
    label: str
    predicted: str
    score: float
    duplicate: bool
    def __init__(self, model_spec: _Optional[_Union[ModelSpec, _Mapping]] = ..., stored: _Optional[str] = ..., sha256: _Optional[str] = ..., label: _Optional[str] = ..., predicted: _Optional[str] = ..., score: _Optional[float] = ..., duplicate: _Optional[bool] = ...) -> None: ...
