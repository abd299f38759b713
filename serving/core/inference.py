"""What every protocol does with a request: decode and resize images (with the training code's own
functions), check pixel arrays, run the model, pick the top classes."""

from __future__ import annotations

import numpy as np

from serving.core.errors import InvalidInput, PayloadTooLarge
from serving.core.repository import ServedModel
from serving.core.settings import Settings
from training.interface.preprocessing import ImageTooLargeError, InvalidImageError, load_image, resize_bilinear, to_rgb


def check_batch(count: int, settings: Settings, what: str = "images") -> None:
    if count == 0:
        raise InvalidInput(f"the request holds no {what}: send at least one")
    if count > settings.max_batch:
        raise PayloadTooLarge(f"the request holds {count} {what}, over the limit of {settings.max_batch} per request")


def check_top_k(top_k, model: ServedModel, settings: Settings) -> int:
    if top_k is None or top_k == "":
        return min(settings.default_top_k, model.num_classes)
    try:
        value = int(top_k)
    except (TypeError, ValueError):
        raise InvalidInput(f"top_k must be an integer, got {top_k!r}") from None
    if isinstance(top_k, float) and top_k != value or isinstance(top_k, bool):
        raise InvalidInput(f"top_k must be an integer, got {top_k!r}")
    if not 1 <= value <= model.num_classes:
        raise InvalidInput(f"top_k must be between 1 and {model.num_classes} (the classes of {model.name}), got {value}")
    return value


def image_pixels(blobs: list[bytes], model: ServedModel, settings: Settings) -> np.ndarray:
    """Encoded images -> float32 ``[batch, H, W, 3]`` at the model's input size."""
    check_batch(len(blobs), settings)
    out = np.empty((len(blobs), *model.input_size, 3), np.float32)
    for index, data in enumerate(blobs):
        try:
            out[index] = load_image(data, model.input_size, settings.max_image_pixels, settings.min_image_side)
        except ImageTooLargeError as error:
            raise PayloadTooLarge(f"{_where(index, blobs)}: {error}") from None
        except InvalidImageError as error:
            raise InvalidInput(f"{_where(index, blobs)}: {error}") from None
    return out


def _where(index: int, blobs: list) -> str:
    return f"image {index}" if len(blobs) > 1 else "the image"


def array_pixels(arrays: list, model: ServedModel, settings: Settings) -> np.ndarray:
    """Raw pixel arrays (any H x W, 1/3/4 channels, uint8 or float 0-255) -> model input."""
    check_batch(len(arrays), settings, "arrays")
    out = np.empty((len(arrays), *model.input_size, 3), np.float32)
    for index, value in enumerate(arrays):
        where = f"array {index}"
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"{where} is not a rectangular array: {error}") from None
        if not np.issubdtype(array.dtype, np.number):
            raise InvalidInput(
                f"{where} must hold numbers (uint8 or float 0-255), got {array.dtype if array.dtype != object else 'ragged or mixed values'}"
            )
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise InvalidInput(f"{where} has shape {list(array.shape)}; expected [height, width] or [height, width, 1|3|4]")
        if min(array.shape[:2]) < settings.min_image_side:
            raise InvalidInput(
                f"{where} is {array.shape[1]}x{array.shape[0]}; images must be at least {settings.min_image_side}x{settings.min_image_side}"
            )
        if array.shape[0] * array.shape[1] > settings.max_image_pixels:
            raise PayloadTooLarge(f"{where} has {array.shape[0] * array.shape[1]} pixels, over the limit of {settings.max_image_pixels}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise InvalidInput(f"{where} holds NaN or infinite values")
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise InvalidInput(f"{where} has values outside 0-255 (min {array.min()}, max {array.max()}); send raw RGB pixels")
        array = to_rgb(array.astype(np.uint8) if array.dtype == np.uint8 else array.astype(np.float32))
        out[index] = resize_bilinear(array, model.input_size)
    return out


def top_classes(probabilities: np.ndarray, model: ServedModel, top_k: int) -> list[list[dict]]:
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [
        [{"class_index": int(i), "label": model.labels[i], "name": model.names[i], "score": float(row[i])} for i in indices]
        for row, indices in zip(probabilities, order)
    ]
