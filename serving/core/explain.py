"""Explanations by occlusion: which parts of the model's input its answer depends on, through the
ONNX model the server already runs (no gradients, no TensorFlow).

The model's input (already decoded and resized as for `/classify`) is cut into a ``grid x grid``
of cells. Each cell in turn is painted grey (127.5 in every channel: Zeiler and Fergus' occluder,
mid-way in the 0-255 pixels every model takes) and the class's probability measured again. A
cell's heat is how much hiding it lowered that probability (clipped at 0: a cell whose hiding
raised it did not support the class); the heatmap is normalised to sum to 1. When no cell lowered
it, every cell gets the same heat and ``informative`` is false.

The cost is fixed: ``grid * grid + 1`` images through the model (65 for the default grid of 8),
sent to the model's queue in chunks of at most IMGCLF_MAX_BATCH images like any other request's,
so an explanation waits its turn and never holds the model for more than one batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np

GREY = 127.5
METHOD = "occlusion"


@dataclasses.dataclass(frozen=True)
class Occlusion:
    """The method's settings for one model input: a ``rows x cols`` grid (each at most the input's side)."""

    rows: int
    cols: int
    height: int
    width: int

    @classmethod
    def for_input(cls, input_size: tuple[int, int], grid: int) -> Occlusion:
        height, width = input_size
        return cls(min(grid, height), min(grid, width), height, width)

    @property
    def passes(self) -> int:
        """Images the model runs for one explanation: every occluded copy and the image itself."""
        return self.rows * self.cols + 1

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The cells' pixel boundaries: rows + 1 and cols + 1 increasing integers from 0 to the side."""
        return np.linspace(0, self.height, self.rows + 1).round().astype(int), np.linspace(0, self.width, self.cols + 1).round().astype(int)

    def batch(self, pixels: np.ndarray) -> np.ndarray:
        """``[passes, H, W, 3]``: the image itself first, then one copy per cell (row-major) with that cell grey."""
        ys, xs = self.edges()
        out = np.repeat(pixels[np.newaxis], self.passes, axis=0)
        index = 1
        for row in range(self.rows):
            for col in range(self.cols):
                out[index, ys[row] : ys[row + 1], xs[col] : xs[col + 1], :] = GREY
                index += 1
        return out

    def heatmap(self, probabilities: np.ndarray, class_index: int) -> tuple[np.ndarray, bool]:
        """From the model's answers to `batch`: the ``rows x cols`` map summing to 1, and whether any cell mattered."""
        drops = np.clip(probabilities[0, class_index] - probabilities[1:, class_index], 0, None).astype(np.float64)
        total = drops.sum()
        if not np.isfinite(total) or total <= 0:
            return np.full((self.rows, self.cols), 1 / (self.rows * self.cols)), False
        return (drops / total).reshape(self.rows, self.cols), True

    def describe(self) -> dict:
        ys, xs = self.edges()
        return {
            "name": METHOD,
            "grid": [self.rows, self.cols],
            "cell_pixels": [int(np.diff(ys).max()), int(np.diff(xs).max())],
            "occluder": "grey (127.5)",
            "score": "drop in the class's probability, clipped at 0, normalised to sum 1",
            "forward_passes": self.passes,
        }


def check_one_image(count: int, settings) -> None:
    """An explanation is of one image: none, or over the batch limit, is refused as `/classify` refuses it."""
    from serving.core.errors import InvalidInput
    from serving.core.inference import check_batch

    check_batch(count, settings)
    if count != 1:
        raise InvalidInput(f"an explanation is of one image; the request holds {count}")


def check_class_index(value, num_classes: int, model_name: str) -> int | None:
    """``class_index`` from a request (None, "" or an integer in range), else `InvalidInput` naming it."""
    from serving.core.errors import InvalidInput

    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise InvalidInput(f"class_index must be an integer, got {value!r}")
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"class_index must be an integer, got {value!r}") from None
    if not 0 <= index < num_classes:
        raise InvalidInput(f"class_index must be between 0 and {num_classes - 1} (the classes of {model_name}), got {index}")
    return index
