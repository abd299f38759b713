"""The one resize and the one decode: pinned against an independent reference and TensorFlow."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, jpeg_bytes
from training.interface import preprocessing


def reference_resize_axis(values: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """Triangle-filter resampling along one axis, in float64, written from the documented semantics:
    half-pixel centres, support scaled by the shrink factor (antialiasing), weights normalised."""
    in_size = values.shape[axis]
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale  # The triangle's half-width is 1 input pixel, stretched when shrinking.
    moved = np.moveaxis(values.astype(np.float64), axis, 0)
    out = np.empty((out_size,) + moved.shape[1:])
    for i in range(out_size):
        centre = (i + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        j = np.arange(low, high)
        weights = np.maximum(0.0, 1.0 - np.abs((j + 0.5 - centre) / filter_scale))
        weights /= weights.sum()
        out[i] = np.tensordot(weights, moved[low:high], axes=1)
    return np.moveaxis(out, 0, axis)


def reference_resize(image: np.ndarray, size) -> np.ndarray:
    return reference_resize_axis(reference_resize_axis(image, size[1], 1), size[0], 0)


SIZES = [
    ((64, 64), (32, 32)),
    ((32, 32), (71, 71)),
    ((375, 500), (32, 32)),
    ((71, 71), (299, 299)),
    ((17, 90), (40, 12)),
    ((5, 3), (64, 64)),
    ((64, 64), (64, 32)),
]


@pytest.mark.parametrize("source,target", SIZES)
def test_uint8_resize_matches_reference_within_one_level(source, target):
    rng = np.random.default_rng(hash((source, target)) % 2**32)
    image = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
    ours = preprocessing.resize_bilinear(image, target)
    assert ours.shape == (*target, 3) and ours.dtype == np.uint8
    difference = np.abs(ours.astype(np.float64) - reference_resize(image, target))
    assert difference.max() <= 1.0, difference.max()


@pytest.mark.parametrize("source,target", SIZES[:4])
def test_float_resize_matches_reference(source, target):
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 255, (*source, 3)).astype(np.float32)
    ours = preprocessing.resize_bilinear(image, target)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_resize(image, target), atol=1e-2)


def test_shrinking_is_antialiased():
    # A one-pixel checkerboard averages to mid-grey when halved; an aliasing resize keeps 0 or 255.
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    halved = preprocessing.resize_bilinear(np.stack([checker] * 3, axis=2), (32, 32))
    assert np.abs(halved[1:-1, 1:-1].astype(int) - 128).max() <= 1  # Borders see a truncated filter.


@pytest.mark.parametrize("source,target", [((64, 64), (32, 32)), ((32, 32), (71, 71)), ((375, 500), (32, 32))])
def test_matches_tensorflow_antialiased_bilinear(source, target):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
    theirs = tf.image.resize(image.astype(np.float32), target, method="bilinear", antialias=True).numpy()
    ours = preprocessing.resize_bilinear(image, target).astype(np.float32)
    assert np.abs(ours - theirs).max() <= 1.0


def test_grayscale_and_rgba_arrays_become_rgb():
    grey = np.full((10, 10), 77, np.uint8)
    assert preprocessing.to_rgb(grey).shape == (10, 10, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    assert preprocessing.to_rgb(rgba).shape == (4, 4, 3)
    assert preprocessing.resize_bilinear(grey, (5, 5)).shape == (5, 5, 1)


@pytest.mark.parametrize("bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros(5, np.uint8)])
def test_bad_arrays_are_refused(bad):
    with pytest.raises(preprocessing.InvalidImageError):
        preprocessing.resize_bilinear(bad, (4, 4))


def test_bad_target_size_is_refused():
    with pytest.raises(ValueError, match="positive"):
        preprocessing.resize_bilinear(np.zeros((4, 4, 3), np.uint8), (0, 4))


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode,fmt",
    [("L", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "GIF"), ("RGB", "BMP"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("LA", "PNG"), ("RGB", "WEBP")],
)
def test_decode_gives_rgb_uint8(mode, fmt):
    image = Image.new(mode, (9, 7))
    decoded = preprocessing.decode_image(_encoded(image, fmt))
    assert decoded.shape == (7, 9, 3) and decoded.dtype == np.uint8


@pytest.mark.parametrize("data,message", [(b"", "empty"), (b"not an image at all", "not an image: the bytes are not in a known image format")])
def test_decode_refuses_garbage(data, message):
    with pytest.raises(preprocessing.InvalidImageError, match=message):
        preprocessing.decode_image(data)


def test_a_tiff_whose_strip_offsets_are_bytes_is_refused_as_a_bad_image():
    # Found by the image fuzz harness (tests/fuzz/corpus/image/finding-tiff-offsets-typeerror):
    # Pillow's TIFF loader raised TypeError, which reached the client as a 500.
    data = (ROOT / "tests" / "fuzz" / "corpus" / "image" / "finding-tiff-offsets-typeerror").read_bytes()
    with pytest.raises(preprocessing.InvalidImageError, match="cannot decode image"):
        preprocessing.decode_image(data)


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "TGA", "PPM"])
def test_formats_outside_the_decoders_list_are_refused_unopened(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, fmt)
    with pytest.raises(preprocessing.InvalidImageError, match=r"not in a known image format \(JPEG, PNG, GIF, BMP, WEBP, TIFF\)"):
        preprocessing.decode_image(buffer.getvalue())


def test_decode_refuses_truncated_jpeg():
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(preprocessing.InvalidImageError):
        preprocessing.decode_image(data[: len(data) // 2])


def test_load_image_is_decode_then_resize():
    array = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encoded(Image.fromarray(array), "PNG")
    np.testing.assert_array_equal(preprocessing.load_image(data, (32, 32)), preprocessing.resize_bilinear(array, (32, 32)))


@pytest.mark.slow  # It starts a Python process.
def test_preprocessing_does_not_import_tensorflow():
    code = "import sys, training.interface.preprocessing; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


RESIZE_CALLS = re.compile(r"\.resize\(|cv2\.resize|layers\.Resizing|tf\.image\.resize|image\.resize|smart_resize")
# The one allowed mirror: the SavedModel's classify signature must resize inside the TensorFlow
# graph (for a stock TF Serving); every export measures it against resize_bilinear (parity.py),
# and tests/unit/test_export_parts.py pins the two within one grey level.
IN_GRAPH_MIRROR = ROOT / "training" / "export" / "saved_model.py"


def test_no_other_module_resizes_images():
    offenders = []
    for path in list((ROOT / "training").rglob("*.py")) + list((ROOT / "serving").rglob("*.py")):
        if path.name == "preprocessing.py" or path == IN_GRAPH_MIRROR:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if RESIZE_CALLS.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_decode_applies_exif_orientation(fmt):
    picture = Image.fromarray(np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3))  # 4 wide, 2 high
    exif = Image.Exif()
    exif[0x0112] = 6  # The camera was rotated: display rotated 90 degrees clockwise.
    buffer = io.BytesIO()
    picture.save(buffer, fmt, exif=exif)
    assert preprocessing.decode_image(buffer.getvalue()).shape == (4, 2, 3)
    assert preprocessing.load_image(buffer.getvalue(), (8, 4)).shape == (8, 4, 3)


@pytest.mark.parametrize("mode,fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG"), ("P", "GIF"), ("RGB", "BMP"), ("RGB", "WEBP")])
def test_load_image_equals_decode_then_resize_in_every_format(mode, fmt):
    array = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    data = _encoded(Image.fromarray(array).convert(mode), fmt)
    for size in ((32, 32), (40, 50), (71, 71)):
        np.testing.assert_array_equal(preprocessing.load_image(data, size), preprocessing.resize_bilinear(preprocessing.decode_image(data), size))


def test_load_image_refuses_an_image_under_the_smallest_side():
    with pytest.raises(preprocessing.ImageTooSmallError, match="image is 1x3 pixels; images must be at least 2x2"):
        preprocessing.load_image(_encoded(Image.new("RGB", (1, 3)), "PNG"), (32, 32), min_side=2)


def test_decode_refuses_an_oversized_header_before_decoding():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    # Declares 5000 x 5000 pixels but carries 16 bytes: only a header-only check can refuse it this way.
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5000, 5000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
    with pytest.raises(preprocessing.ImageTooLargeError, match="5000x5000 = 25000000 pixels, over the limit of 1000000"):
        preprocessing.decode_image(data, max_pixels=1_000_000)
