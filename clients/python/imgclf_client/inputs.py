"""Request inputs. Turns what a user holds (paths, bytes, file objects, PIL images, numpy arrays) into encoded
image bytes. Encoded files travel as they are; pixels are encoded as PNG (lossless). The server
decodes and resizes, so nothing here knows a model's input size."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

import numpy as np

from imgclf_client.errors import InvalidInputError


def encode(image, index: int = 0) -> bytes:
    where = f"image {index}"
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with open(path, "rb") as opened:
                return opened.read()
        except FileNotFoundError:
            raise InvalidInputError(f"{where}: no such file: {path}") from None
        except IsADirectoryError:
            raise InvalidInputError(f"{where}: {path} is a directory, not an image file") from None
        except OSError as error:
            raise InvalidInputError(f"{where}: cannot read {path}: {error.strerror or error}") from None
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if hasattr(image, "read"):
        data = image.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInputError(f"{where}: the file object must be opened in binary mode ('rb')")
        return bytes(data)
    if isinstance(image, np.ndarray):
        return _png(_pixels(image, where))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()
    raise InvalidInputError(f"{where}: expected a path, bytes, a binary file object, a PIL image or a numpy array, got {type(image).__name__}")


def encode_all(images) -> list[bytes]:
    if (
        isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray))
        or hasattr(images, "read")
        or type(images).__module__.startswith("PIL.")
    ):
        images = [images]
    if not isinstance(images, Iterable):
        raise InvalidInputError(
            f"images must be a path, bytes, a binary file object, a PIL image or a numpy array, or a list of them; got {type(images).__name__}"
        )
    blobs = [encode(image, index) for index, image in enumerate(images)]
    if not blobs:
        raise InvalidInputError("no images given")
    return blobs


def _pixels(array: np.ndarray, where: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidInputError(f"{where}: a pixel array must be HxW or HxWxC with 1, 3 or 4 channels, got shape {array.shape}")
    if array.dtype != np.uint8:
        check_numbers(array, where)
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise InvalidInputError(f"{where}: pixel values must be 0-255, got {array.min()}..{array.max()}")
        array = np.rint(array).astype(np.uint8)
    return array


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def pixel_list(pixels) -> list[np.ndarray]:
    """One array or a list of arrays -> a list of HxW or HxWxC arrays (for predict). Values that
    no protocol can carry (NaN, infinities, non-numbers) are refused here."""
    if isinstance(pixels, np.ndarray) and pixels.ndim == 4:
        arrays = list(pixels)
    elif isinstance(pixels, np.ndarray):
        arrays = [pixels]
    else:
        arrays = [np.asarray(p) for p in pixels]
    if not arrays:
        raise InvalidInputError("no pixel arrays given")
    for index, array in enumerate(arrays):
        check_numbers(array, f"pixel array {index}")
    return arrays


def check_numbers(array: np.ndarray, where: str) -> None:
    """Refuses what no protocol can carry as pixels: non-numbers, NaN and infinities."""
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(f"{where} must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InvalidInputError(f"{where} holds NaN or infinite values")


def check_top_k(top_k) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InvalidInputError(f"top_k must be a whole number >= 1, got {top_k!r}")
    return top_k


def one_image(image) -> bytes:
    """The encoded bytes of exactly one image (what an explanation or feedback is about)."""
    if isinstance(image, (list, tuple)):
        raise InvalidInputError(f"one image is explained at a time; got a {type(image).__name__} of {len(image)}")
    return encode(image)


def check_class_index(class_index) -> int | None:
    if class_index is None:
        return None
    if not isinstance(class_index, (int, np.integer)) or isinstance(class_index, bool) or class_index < 0:
        raise InvalidInputError(f"class_index must be a whole number >= 0 (or None for the top class), got {class_index!r}")
    return int(class_index)


def check_label(label) -> str:
    if not isinstance(label, str) or not label:
        raise InvalidInputError(f"label must be a class id (a non-empty string), got {label!r}")
    return label


def feedback_image(image, request_id) -> bytes | None:
    """The image feedback sends: exactly one of ``image`` and ``request_id``."""
    if (image is None) == (request_id is None):
        raise InvalidInputError("send the image or the request_id of a recent classify call (one of them)")
    return None if image is None else one_image(image)
