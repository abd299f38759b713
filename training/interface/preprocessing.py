"""The one image decode and the one bilinear resize used by training and serving.

Semantics of `resize_bilinear` (this is the contract every pipeline of the project relies on):

* a separable triangle ("bilinear") filter with half-pixel centres: output pixel ``i`` samples
  the input at ``(i + 0.5) * in_size / out_size - 0.5``;
* antialiased when shrinking: the filter's support grows with the scale factor, exactly as
  Pillow's ``Image.Resampling.BILINEAR`` does (which the study used), so a 64->32 shrink
  averages each 2x2 neighbourhood with triangle weights instead of aliasing;
* uint8 images stay uint8 (rounded, clipped as Pillow does); float images (0-255) are resized in
  float32 without rounding.

It matches ``tf.image.resize(..., method="bilinear", antialias=True)`` within one grey level;
`tests/unit/test_preprocessing.py` pins both facts. Nothing here imports TensorFlow: the server
calls these functions on its hot path.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps

# Refuse, rather than silently zero-fill, images whose data stops early.
ImageFile.LOAD_TRUNCATED_IMAGES = False


# The two transforms in words, for model cards and the service's model metadata.
DECODE_SEMANTICS = (
    "decoded to 8-bit RGB: grayscale and palette images become RGB, alpha is dropped (not composited), "
    "16-bit images are scaled to 8 bits, an animation gives its first frame, EXIF orientation is applied"
)
RESIZE_SEMANTICS = (
    "bilinear (triangle filter) with half-pixel centres, antialiased when shrinking, rounded to whole grey "
    "levels: Pillow's Image.Resampling.BILINEAR on uint8, which tf.image.resize(method='bilinear', "
    "antialias=True) matches within one grey level"
)


class InvalidImageError(ValueError):
    """Raised when bytes or an array cannot be read as an image."""


def _as_hwc(image: np.ndarray) -> np.ndarray:
    """Returns ``image`` as height x width x channels, accepting a 2-D grayscale array."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"expected an image array of shape (height, width[, 1|3|4]), got {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidImageError(f"image has an empty dimension: {array.shape}")
    return array


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Converts a grayscale, RGB or RGBA array to three channels (alpha is dropped)."""
    array = _as_hwc(image)
    channels = array.shape[2]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 4:
        return array[:, :, :3]
    return array


def resize_bilinear(image: np.ndarray | Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resizes an image to ``size`` = (height, width) with the project's bilinear filter.

    Args:
        image: a uint8 or float array, (height, width) or (height, width, channels), or an
            8-bit RGB Pillow image (what `decode_rgb` gives; resized without a copy to numpy first).
        size: the output (height, width).

    Returns:
        An array of shape (height, width, channels): uint8 if the input was uint8, else float32.
    """
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"resize target must be positive, got {size}")
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise InvalidImageError(f"expected an 8-bit RGB image, got mode {image.mode}")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image)
    array = _as_hwc(image)
    if array.shape[0] == height and array.shape[1] == width:
        return array.copy() if array.dtype == np.uint8 else array.astype(np.float32)
    if array.dtype == np.uint8:
        if array.shape[2] in (3, 4):
            mode = "RGB" if array.shape[2] == 3 else "RGBA"
            resized = Image.fromarray(array, mode).resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(resized)
        resized = Image.fromarray(array[:, :, 0], "L").resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(resized)[:, :, np.newaxis]
    # Float input: resize each channel in Pillow's 32-bit float mode, same filter, no rounding.
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(array[:, :, c], dtype=np.float32), "F").resize((width, height), Image.Resampling.BILINEAR))
        for c in range(array.shape[2])
    ]
    return np.stack(channels, axis=2)


class ImageTooLargeError(InvalidImageError):
    """The image's header declares more pixels than allowed (raised before the pixels are decoded)."""


class ImageTooSmallError(InvalidImageError):
    """The image is narrower or shorter than the smallest side allowed."""


# Formats whose EXIF block, if any, Pillow puts in ``info`` when it opens the file: without one
# there is no orientation to read (getexif() costs a sixth of a small JPEG's decode).
_EXIF_IN_INFO = {"JPEG", "PNG", "WEBP", "GIF", "BMP"}


def _orientation(image: Image.Image) -> int:
    if image.format in _EXIF_IN_INFO and "exif" not in image.info and "Raw profile type exif" not in image.info:
        return 1
    return image.getexif().get(0x0112, 1)


# The formats the decoder opens (what image folders hold; the service documents the first five).
# Pillow's other plugins (EPS, PSD, ICO, PCX...) are never tried on untrusted bytes.
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")


def decode_rgb(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """Decodes encoded image bytes (JPEG, PNG, GIF, BMP, WebP or TIFF) to an 8-bit RGB Pillow image.

    Grayscale, palette, CMYK, 16-bit and alpha images all become 8-bit RGB; an animated image
    gives its first frame; an EXIF orientation is applied. ``max_pixels`` refuses, from the
    header alone, an image declaring more pixels (`ImageTooLargeError`). Raises
    `InvalidImageError` naming the problem on anything else, however the decoder fails.
    """
    if not data:
        raise InvalidImageError("image data is empty")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageTooLargeError(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
            image.load()
            if _orientation(image) != 1:  # EXIF orientation: show it as the camera meant.
                image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                scale = 255.0 / 65535.0 if array.max(initial=0) > 255 else 1.0
                return Image.fromarray(to_rgb(np.clip(array * scale + 0.5, 0, 255).astype(np.uint8)), "RGB")
            return image if image.mode == "RGB" else image.convert("RGB")
    except (InvalidImageError, MemoryError):
        raise
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"image is too large to decode: {error}") from None
    except Image.UnidentifiedImageError:
        raise InvalidImageError(f"not an image: the bytes are not in a known image format ({', '.join(FORMATS)})") from None
    except Exception as error:  # Pillow's decoders fail on corrupt files in many ways (OSError, TypeError, struct.error...).
        raise InvalidImageError(f"cannot decode image: {error or type(error).__name__}") from error


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """`decode_rgb` as a height x width x 3 uint8 array."""
    return np.asarray(decode_rgb(data, max_pixels))


def load_image(data: bytes, size: tuple[int, int], max_pixels: int | None = None, min_side: int = 1) -> np.ndarray:
    """Decodes image bytes and resizes them bilinearly: the model-input transform of the project.

    ``min_side`` refuses (`InvalidImageError`) an image narrower or shorter than that."""
    image = decode_rgb(data, max_pixels)
    if min(image.size) < min_side:
        raise ImageTooSmallError(f"image is {image.width}x{image.height} pixels; images must be at least {min_side}x{min_side}")
    return resize_bilinear(image, size)
