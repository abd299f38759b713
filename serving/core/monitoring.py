"""Watching what a served model predicts: each answer's top-1 confidence and class go to
Prometheus, and a window of the last N predicted classes is compared with the model card's
reference (`training.interface.monitoring`, which says why the Jensen-Shannon divergence and how
each model's threshold is set).

    imgclf_prediction_confidence{model, version}           histogram of each image's top-1 probability
    imgclf_predicted_class_total{model, class}             predictions by class id (at most the model's classes)
    imgclf_prediction_drift{model, version}                divergence of the last N predictions from the reference (bits)
    imgclf_prediction_drift_threshold{model, version}      the 99th percentile of that divergence for N predictions like the reference's

Each worker keeps its own window (IMGCLF_DRIFT_WINDOW predictions per model version); the drift
gauges report the highest of the live workers. The gauge is set once the window is full, so a
fresh worker reports no drift from its first few answers; then it is recomputed every 1% of
the window (10 predictions of 1,000), a few microseconds each time.
"""

from __future__ import annotations

import threading

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from training.interface import monitoring

CONFIDENCE = Histogram(
    "imgclf_prediction_confidence", "Top-1 probability of each prediction", ["model", "version"], buckets=monitoring.CONFIDENCE_BUCKETS
)
PREDICTED_CLASS = Counter("imgclf_predicted_class", "Predictions by predicted class", ["model", "class"])
DRIFT = Gauge(
    "imgclf_prediction_drift",
    "Jensen-Shannon divergence (bits) of the last N predicted classes from the model card's reference",
    ["model", "version"],
    multiprocess_mode="livemax",
)
DRIFT_THRESHOLD = Gauge(
    "imgclf_prediction_drift_threshold",
    "The divergence N predictions drawn from the reference stay under 99 times in 100",
    ["model", "version"],
    multiprocess_mode="livemax",
)


class Monitor:
    """One model version's watch in one worker: fed every answer's probabilities (thread-safe)."""

    def __init__(self, name: str, version: int, labels: list[str], card: dict, window: int):
        self.name, self.version, self.labels, self.window = name, str(version), labels, window
        self._confidence = CONFIDENCE.labels(name, self.version)
        self._classes = [PREDICTED_CLASS.labels(name, label) for label in labels]
        reference = card.get("reference") or {}
        counts = reference.get("predicted_class_counts")
        self.reference = monitoring.distribution(counts) if counts and len(counts) == len(labels) else None
        self.recent = np.zeros(window, np.int64)
        self.counts = np.zeros(len(labels), np.int64)
        self.seen = 0
        self.step = max(1, window // 100)
        self._computed_at = 0
        self._lock = threading.Lock()
        self.threshold = None
        if self.reference is not None:
            self.threshold = monitoring.null_quantile(self.reference, window)
            DRIFT_THRESHOLD.labels(name, self.version).set(self.threshold)

    def observe(self, probabilities: np.ndarray) -> None:
        top = probabilities.argmax(axis=1).tolist()
        for value in probabilities.max(axis=1).tolist():
            self._confidence.observe(value)
        for index in top:
            self._classes[index].inc()
        if self.reference is None:
            return
        with self._lock:
            for index in top[-self.window :]:
                slot = self.seen % self.window
                if self.seen >= self.window:
                    self.counts[self.recent[slot]] -= 1
                self.recent[slot] = index
                self.counts[index] += 1
                self.seen += 1
            # Recomputed every 1% of the window (each prediction for windows under 100), not on
            # every answer: the gauge is at most 1% of the window behind.
            due = self.seen >= self.window and (self.seen - self._computed_at >= self.step or self._computed_at < self.window)
            if due:
                self._computed_at = self.seen
            drift = self.drift() if due else None
        if drift is not None:
            DRIFT.labels(self.name, self.version).set(drift)

    def drift(self) -> float | None:
        """The divergence of the window from the reference, once the window is full."""
        if self.reference is None or self.seen < self.window:
            return None
        return monitoring.jensen_shannon(self.counts / self.window, self.reference)
