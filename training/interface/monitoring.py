"""What a served model's predictions are compared with: the reference the export records in the
model card (the validation images' predicted classes and top-1 confidences), and the measure of
drift the server computes against it. One definition for the export and the server.

Drift is the Jensen-Shannon divergence, in bits (0: the same distribution, 1: disjoint), between
the predicted-class distribution of a model's last N predictions and the reference's. It is
symmetric and bounded, and stays finite when the window holds classes the reference never
predicted (KL divergence would not). What counts as high depends on the number of classes and on
N: a window of 1,000 predictions drawn from the reference itself shows about 0.04 bits with 200
classes and 0.002 with 10. So each served model gets its own threshold, `null_quantile`: the
99th percentile of the divergence of N predictions drawn from the reference, the value that
predictions like the validation images' stay under 99 times in 100.
"""

from __future__ import annotations

import numpy as np

# The top-1 confidence histogram's upper bounds: the card's counts and the server's Prometheus
# histogram (imgclf_prediction_confidence) use the same buckets.
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
REFERENCE_FORMAT = "imgclf-prediction-reference/1"


def reference(probabilities: np.ndarray, source: str) -> dict:
    """The card's reference from the served model's probabilities on the validation images."""
    probabilities = np.asarray(probabilities)
    top = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    buckets = np.searchsorted(np.asarray(CONFIDENCE_BUCKETS), confidence, side="left").clip(0, len(CONFIDENCE_BUCKETS) - 1)
    return {
        "format": REFERENCE_FORMAT,
        "source": source,
        "images": int(len(probabilities)),
        "predicted_class_counts": np.bincount(top, minlength=probabilities.shape[1]).astype(int).tolist(),
        "confidence_buckets": list(CONFIDENCE_BUCKETS),
        "confidence_counts": np.bincount(buckets, minlength=len(CONFIDENCE_BUCKETS)).astype(int).tolist(),
    }


def distribution(counts) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), 1 / max(len(counts), 1))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon divergence of two distributions over the same classes, in bits (0 to 1)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    middle = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        present = a > 0
        return float((a[present] * np.log2(a[present] / middle[present])).sum())

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def null_quantile(reference_distribution: np.ndarray, window: int, quantile: float = 0.99, draws: int = 400, seed: int = 0) -> float:
    """The ``quantile`` of the divergence between ``window`` predictions drawn from the reference and the reference."""
    rng = np.random.default_rng(seed)
    p = np.asarray(reference_distribution, np.float64)
    samples = rng.multinomial(window, p, size=draws) / window
    return float(np.quantile([jensen_shannon(sample, p) for sample in samples], quantile))
