from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VectorizeRequest(_message.Message):
    __slots__ = ("image", "prompt", "saliency_mask", "options", "previews")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_MASK_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    prompt: str
    saliency_mask: bytes
    options: VectorizeOptions
    previews: bool
    def __init__(self, image: _Optional[bytes] = ..., prompt: _Optional[str] = ..., saliency_mask: _Optional[bytes] = ..., options: _Optional[_Union[VectorizeOptions, _Mapping]] = ..., previews: _Optional[bool] = ...) -> None: ...

class VectorizeOptions(_message.Message):
    __slots__ = ("paths", "mode", "levels", "seed", "work_size", "simplify", "segment", "saliency", "structure_iters", "refine_iters", "fill", "quality")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WORK_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIMPLIFY_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SALIENCY_FIELD_NUMBER: _ClassVar[int]
    STRUCTURE_ITERS_FIELD_NUMBER: _ClassVar[int]
    REFINE_ITERS_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    paths: int
    mode: str
    levels: int
    seed: int
    work_size: int
    simplify: str
    segment: str
    saliency: str
    structure_iters: int
    refine_iters: int
    fill: str
    quality: str
    def __init__(self, paths: _Optional[int] = ..., mode: _Optional[str] = ..., levels: _Optional[int] = ..., seed: _Optional[int] = ..., work_size: _Optional[int] = ..., simplify: _Optional[str] = ..., segment: _Optional[str] = ..., saliency: _Optional[str] = ..., structure_iters: _Optional[int] = ..., refine_iters: _Optional[int] = ..., fill: _Optional[str] = ..., quality: _Optional[str] = ...) -> None: ...

class VectorizeEvent(_message.Message):
    __slots__ = ("queued", "progress", "result", "preview")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    queued: Queued
    progress: Progress
    result: Result
    preview: Preview
    def __init__(self, queued: _Optional[_Union[Queued, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., preview: _Optional[_Union[Preview, _Mapping]] = ...) -> None: ...

class Queued(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "fraction", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("svg", "fraction", "stage")
    SVG_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    svg: str
    fraction: float
    stage: str
    def __init__(self, svg: _Optional[str] = ..., fraction: _Optional[float] = ..., stage: _Optional[str] = ...) -> None: ...

class LayerInfo(_message.Message):
    __slots__ = ("id", "label", "path_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PATH_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    path_count: int
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., path_count: _Optional[int] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("svg", "layers", "metrics", "timings", "job_id", "warnings")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TimingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SVG_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    svg: str
    layers: _containers.RepeatedCompositeFieldContainer[LayerInfo]
    metrics: _containers.ScalarMap[str, float]
    timings: _containers.ScalarMap[str, float]
    job_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, svg: _Optional[str] = ..., layers: _Optional[_Iterable[_Union[LayerInfo, _Mapping]]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., timings: _Optional[_Mapping[str, float]] = ..., job_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_image_bytes", "max_pixels", "max_paths", "max_prompt_chars", "max_work_size", "max_iters", "max_queue", "max_message_bytes")
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_PATHS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_WORK_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_image_bytes: int
    max_pixels: int
    max_paths: int
    max_prompt_chars: int
    max_work_size: int
    max_iters: int
    max_queue: int
    max_message_bytes: int
    def __init__(self, max_image_bytes: _Optional[int] = ..., max_pixels: _Optional[int] = ..., max_paths: _Optional[int] = ..., max_prompt_chars: _Optional[int] = ..., max_work_size: _Optional[int] = ..., max_iters: _Optional[int] = ..., max_queue: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("version", "device", "models_loaded", "limits", "auth_required", "queue_length", "busy", "prompt_supported", "qualities", "default_quality")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODELS_LOADED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    PROMPT_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    QUALITIES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_QUALITY_FIELD_NUMBER: _ClassVar[int]
    version: str
    device: str
    models_loaded: _containers.RepeatedScalarFieldContainer[str]
    limits: Limits
    auth_required: bool
    queue_length: int
    busy: bool
    prompt_supported: bool
    qualities: _containers.RepeatedScalarFieldContainer[str]
    default_quality: str
    def __init__(self, version: _Optional[str] = ..., device: _Optional[str] = ..., models_loaded: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., auth_required: _Optional[bool] = ..., queue_length: _Optional[int] = ..., busy: _Optional[bool] = ..., prompt_supported: _Optional[bool] = ..., qualities: _Optional[_Iterable[str]] = ..., default_quality: _Optional[str] = ...) -> None: ...
