"""The parity checks every export runs before it is committed.

1. ONNX Runtime vs Keras on the same pixels: the largest absolute difference of probabilities
   must be at most `MAX_PROBABILITY_DIFFERENCE` and the top-1 classes identical.
2. The SavedModel's ``classify`` signature (decode + resize in the TensorFlow graph) vs the
   project's own path (`training.interface.preprocessing.load_image`, then ONNX Runtime), on the same
   encoded image bytes. The two preprocessings may differ by rounding only: at most
   `MAX_PIXEL_DIFFERENCE` levels per pixel. ``classify``'s top-1 must be ONNX Runtime's top-1
   on the graph's own pixels. Where a one-level rounding difference moves a near-tied image
   from one class to another (a trained model has such images), that is counted and recorded
   (``rounding_flips``), not refused: which of two near-equal classes wins then depends on
   arithmetic, not on a difference between the paths.

A top-1 disagreement only counts when the reference's top class leads the other pick by more
than `TIE_MARGIN` (in probability): below that the two classes are tied within arithmetic noise
(untrained smoke models produce such ties), and either answer is right. Ties are reported.

The inputs are real images where the run's dataset is at hand: validation images (topped up
with training images), encoded as JPEG, PNG, grayscale PNG, RGBA PNG, GIF and BMP at sizes above,
at and below the model's input size, so that both the decoders and the resize in both
directions are exercised. Without the dataset, seeded random images stand in, and the model
card says so.
"""

from __future__ import annotations

import dataclasses
import io
import logging

import numpy as np
from PIL import Image

from training.interface.preprocessing import load_image, resize_bilinear

log = logging.getLogger("training")

SAMPLE_COUNT = 64
MAX_PROBABILITY_DIFFERENCE = 1e-4
TIE_MARGIN = 1e-3
MAX_PIXEL_DIFFERENCE = 1.0


class ParityError(RuntimeError):
    """An exported artifact does not reproduce the Keras model's predictions."""


@dataclasses.dataclass
class Samples:
    pixels: np.ndarray  # uint8 [N, H, W, 3] at the model's input size
    encoded: list[bytes]
    formats: list[str]
    source: str


def _scaled(size: tuple[int, int], numerator: int, denominator: int, extra: int) -> tuple[int, int]:
    return max(1, size[0] * numerator // denominator + extra), max(1, size[1] * numerator // denominator + extra * 2)


def encode_variants(pixels: np.ndarray) -> tuple[list[bytes], list[str]]:
    """Each image encoded in one of six format/size variants (cycled), as a client might send it."""
    encoded, formats = [], []
    size = pixels.shape[1:3]
    for index, image in enumerate(pixels):
        variant = index % 6
        if variant == 0:
            target, mode, fmt, options = _scaled(size, 2, 1, 0), "RGB", "JPEG", {"quality": 92}
        elif variant == 1:
            target, mode, fmt, options = _scaled(size, 3, 2, 1), "RGB", "PNG", {}
        elif variant == 2:
            target, mode, fmt, options = tuple(size), "RGB", "BMP", {}
        elif variant == 3:
            target, mode, fmt, options = _scaled(size, 4, 3, 0), "P", "GIF", {}
        elif variant == 4:
            target, mode, fmt, options = _scaled(size, 1, 2, 3), "L", "PNG", {}
        else:
            target, mode, fmt, options = _scaled(size, 4, 1, 1), "RGBA", "PNG", {}
        picture = Image.fromarray(resize_bilinear(image, target), "RGB")
        if mode == "P":
            picture = picture.quantize(256)
        elif mode != "RGB":
            picture = picture.convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, fmt, **options)
        encoded.append(buffer.getvalue())
        formats.append(f"{fmt.lower()}{'-' + mode.lower() if mode not in ('RGB', 'P') else ''} {target[0]}x{target[1]}")
    return encoded, formats


def random_samples(size: tuple[int, int], count: int = SAMPLE_COUNT, seed: int = 0) -> np.ndarray:
    """Seeded smooth random images (noise upscaled), standing in when no dataset is at hand."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, max(2, size[0] // 4), max(2, size[1] // 4), 3), dtype=np.uint8)
    return np.stack([resize_bilinear(image, size) for image in coarse])


def samples_from(images: np.ndarray | None, size: tuple[int, int], source: str) -> Samples:
    images = np.zeros((0, *size, 3), np.uint8) if images is None else np.asarray(images, np.uint8)[:SAMPLE_COUNT]
    if len(images) < SAMPLE_COUNT:
        filler = random_samples(size, SAMPLE_COUNT - len(images))
        source = f"{source} + {len(filler)} random images" if len(images) else "seeded random images (no dataset at hand)"
        images = np.concatenate([images, filler])
    encoded, formats = encode_variants(images)
    return Samples(images, encoded, formats, source)


def _top1_disagreements(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, int]:
    """(rows that really disagree, number of ties): rows whose argmax differ, split by the reference's margin."""
    ref_top, other_top = reference.argmax(axis=1), other.argmax(axis=1)
    rows = np.flatnonzero(ref_top != other_top)
    margins = reference[rows, ref_top[rows]] - reference[rows, other_top[rows]]
    return rows[margins > TIE_MARGIN], int((margins <= TIE_MARGIN).sum())


def check_onnx_against_keras(keras_probabilities: np.ndarray, onnx_probabilities: np.ndarray) -> dict:
    difference = float(np.abs(keras_probabilities - onnx_probabilities).max())
    disagreeing, ties = _top1_disagreements(keras_probabilities, onnx_probabilities)
    disagreements = len(disagreeing)
    result = {"inputs": len(keras_probabilities), "max_abs_difference": difference, "top1_disagreements": disagreements, "top1_ties": ties}
    if difference > MAX_PROBABILITY_DIFFERENCE or disagreements:
        raise ParityError(
            f"ONNX Runtime does not reproduce Keras: max |difference| {difference:.3g} "
            f"(limit {MAX_PROBABILITY_DIFFERENCE:g}), {disagreements} top-1 disagreements of {len(keras_probabilities)}"
        )
    return result


def check_classify_against_shared_path(saved, onnx_session, samples: Samples) -> dict:
    """The loaded SavedModel's ``classify`` vs `load_image` + ONNX Runtime on the same image bytes."""
    import tensorflow as tf

    from training.export.onnx_model import run

    size = samples.pixels.shape[1:3]
    shared_pixels = np.stack([load_image(data, size) for data in samples.encoded]).astype(np.float32)
    batch = tf.constant(samples.encoded)
    graph_pixels = saved.preprocess(batch).numpy()
    pixel_difference = np.abs(graph_pixels - shared_pixels).reshape(len(shared_pixels), -1).max(axis=1)
    worst = int(pixel_difference.argmax())
    if pixel_difference[worst] > MAX_PIXEL_DIFFERENCE:
        raise ParityError(
            f"the SavedModel's decode + resize and the shared path's differ by {pixel_difference[worst]:.0f} levels "
            f"on {samples.formats[worst]} (limit {MAX_PIXEL_DIFFERENCE:.0f}: rounding only)"
        )
    classified = saved.signatures["classify"](images=batch)
    graph_top1 = classified["class_index"].numpy()[:, 0]
    on_graph_pixels = run(onnx_session, graph_pixels.astype(np.float32))
    shared = run(onnx_session, shared_pixels)
    # The classify signature returns only its top classes: compare its top-1 as a one-hot row.
    graph_one_hot = np.eye(shared.shape[1], dtype=shared.dtype)[graph_top1]
    disagreeing, ties = _top1_disagreements(on_graph_pixels, graph_one_hot)
    flips = np.flatnonzero(on_graph_pixels.argmax(axis=1) != shared.argmax(axis=1))
    disagreements = len(disagreeing)
    result = {
        "inputs": len(samples.encoded),
        "max_pixel_difference": float(pixel_difference.max()),
        "mean_pixel_difference": float(np.abs(graph_pixels - shared_pixels).mean()),
        "worst_pixel_input": samples.formats[worst],
        "top1_disagreements": disagreements,
        "top1_ties": ties,
        "rounding_flips": len(flips),
    }
    if disagreements:
        detail = ", ".join(samples.formats[i] for i in disagreeing[:5])
        raise ParityError(
            f"the SavedModel's classify signature and ONNX Runtime on the same pixels disagree "
            f"on the top-1 class of {disagreements} of {len(samples.encoded)} images ({detail})"
        )
    if len(flips):
        log.info(
            "parity: %d near-tied images change class between the two preprocessings' rounding: %s",
            len(flips),
            ", ".join(samples.formats[i] for i in flips[:5]),
        )
    return result
