"""The contract between training, export and serving: the names an exported model answers to.

Every value here is written once; the model builders, the export and the service import it from
here (the service imports only `training.interface` of `training/`, which the bento carries
whole). What the SavedModel's signatures really hold (tensor names, dtypes,
shapes) is read off the written SavedModel at export and recorded in the model card
(``signature_defs``), so serving describes the model it serves rather than a copy of it.
"""

from __future__ import annotations

# The model: raw RGB pixels in (float32, 0-255, [batch, H, W, 3]), probabilities out.
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"

# The SavedModel's two signatures (what TensorFlow Serving exposes).
SERVING_SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "classify"
SIGNATURES = (CLASSIFY_SIGNATURE, SERVING_SIGNATURE)
CLASSIFY_INPUT = "images"  # Encoded image bytes, DT_STRING [batch].
CLASSIFY_OUTPUTS = ("class_index", "label", "name", "score")  # Each [batch, k], best first.
CLASSIFY_TOP_K = 5

# The BentoML store: every exported version is a model of this module.
STORE_MODULE = "imgclf"


def classify_k(num_classes: int) -> int:
    """How many classes the ``classify`` signature returns for a model of ``num_classes``."""
    return min(CLASSIFY_TOP_K, num_classes)
