"""Each architecture's options as a typed, frozen dataclass, and `parse`, which builds one from a
preset's mapping and refuses a misspelt or wrong-typed option by its name. The defaults are the
study's networks. Imports no TensorFlow (`training.tasks` checks presets with it)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class CnnOptions:
    """The study's 18-layer CNN (task 1) and its variants; see `training.models.cnn`."""

    filters: tuple[int, ...] = (32, 32, 64, 64, 64)
    convs_per_block: int = 1
    # "study" (after the third block only), "all" (after every convolution, before its ReLU), "none".
    batch_norm: Literal["study", "all", "none"] = "study"
    dropout: float = 0.2
    dropout_after: tuple[int, ...] = (5,)  # 1-based block numbers followed by ``dropout``.
    dense: tuple[int, ...] = (2048, 1024, 1024, 512, 512)
    head: Literal["flatten", "average"] = "flatten"  # The reduction to a vector: flatten, or global average pooling.
    head_dropout: float = 0.0  # After the reduction and after each dense layer.
    # Keras' 0.99 averages the batch statistics over ~100 steps; short runs need a shorter memory (0.9).
    batch_norm_momentum: float = 0.99
    dense_batch_norm: bool = False  # Batch norm in the dense layers too (before their ReLU).


@dataclasses.dataclass(frozen=True)
class AlexNetOptions:
    """AlexNet (task 3); see `training.models.alexnet`. The stem adapts to small inputs."""

    first_stride: int = 4
    first_kernel: int = 11
    filters: tuple[int, ...] = (96, 256, 384, 384, 256)
    batch_norm: bool = False
    dense: tuple[int, ...] = (4096, 4096)
    dropout: float = 0.5
    batch_norm_momentum: float = 0.99
    dense_batch_norm: bool = False


# The layers of an Xception head, in order; the softmax classifier always follows them.
@dataclasses.dataclass(frozen=True)
class Flatten:
    pass


@dataclasses.dataclass(frozen=True)
class Average:
    """Global average pooling."""


@dataclasses.dataclass(frozen=True)
class Dropout:
    rate: float


@dataclasses.dataclass(frozen=True)
class Dense:
    units: int
    activation: str | None = None


@dataclasses.dataclass(frozen=True)
class LeakyReLU:
    slope: float = 0.3


@dataclasses.dataclass(frozen=True)
class BatchNorm:
    pass


HeadLayer = Flatten | Average | Dropout | Dense | LeakyReLU | BatchNorm


@dataclasses.dataclass(frozen=True)
class XceptionOptions:
    """A frozen Xception base under ``head`` (tasks 4-6); see `training.models.xception`."""

    head: tuple[HeadLayer, ...] = (Average(),)


@dataclasses.dataclass(frozen=True)
class AutoKerasOptions:
    """Task 2's search. All defaults: the stock ImageClassifier and its whole space (the study's).
    ``search_space`` (see `training.models.autokeras_space`) stands alone; otherwise an ImageBlock
    with ``block_type``, ``normalize`` and ``augment``."""

    search_space: str | None = None
    block_type: str | None = None
    normalize: bool = True
    augment: bool | None = None


OPTIONS = {"cnn": CnnOptions, "alexnet": AlexNetOptions, "xception": XceptionOptions, "autokeras": AutoKerasOptions}
ModelOptions = CnnOptions | AlexNetOptions | XceptionOptions | AutoKerasOptions


def parse(architecture: str, given: Mapping[str, Any] | ModelOptions) -> ModelOptions:
    """``architecture``'s options from ``given`` (a mapping of the options that differ from the
    defaults, or options already parsed); a misspelt name or a wrong type is refused by name."""
    kind = OPTIONS[architecture]
    if isinstance(given, kind):
        return given
    if not isinstance(given, Mapping):
        raise ValueError(f"{architecture} options must be a mapping of option names to values, got {type(given).__name__}")
    hints = typing.get_type_hints(kind)
    unknown = sorted(set(given) - set(hints))
    if unknown:
        raise ValueError(f"{architecture} has no option {', '.join(unknown)}; options: {', '.join(hints)}")
    return kind(**{name: _checked(f"{architecture} option {name}", value, hints[name]) for name, value in given.items()})


def merge(options: ModelOptions, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as a mapping of its values, with ``changes`` over them (to `parse` again)."""
    return {**{field.name: getattr(options, field.name) for field in dataclasses.fields(options)}, **changes}


def to_json(options: ModelOptions) -> dict[str, Any]:
    """The options as JSON values (a head layer as ``{"layer": "dense", "units": 512, ...}``)."""

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {"layer": type(value).__name__.lower(), **dataclasses.asdict(value)}
        return [plain(item) for item in value] if isinstance(value, tuple) else value

    return {field.name: plain(getattr(options, field.name)) for field in dataclasses.fields(options)}


def _checked(where: str, value, hint):
    """``value`` as ``hint`` wants it (a list becomes a tuple), or a ValueError naming ``where``."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value in arguments:
            return value
        raise ValueError(f"{where} must be one of {', '.join(map(repr, arguments))}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        for option in arguments:
            try:
                return _checked(where, value, option)
            except ValueError:
                continue
        raise ValueError(f"{where} must be {_describe(hint)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"{where} must be a sequence of {_describe(arguments[0])}, got {value!r}")
        return tuple(_checked(f"{where}[{index}]", item, arguments[0]) for index, item in enumerate(value))
    if hint is type(None):
        if value is None:
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise ValueError(f"{where} must be {_describe(hint)}, got {value!r}")


def _describe(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))
