"""Watching predictions in process: every answer's confidence and class reach Prometheus, and the
drift gauge rises over its threshold for a stream of one class while varied images stay under it."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY

from tests.serving.conftest import encoded
from tests.tiny_model import solid

COLOURS = [encoded(solid(c)) for c in range(3)]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def classify(http, colours: list[int]) -> None:
    files = [("image", (f"{i}.png", COLOURS[c], "image/png")) for i, c in enumerate(colours)]
    answer = http.post("/classify", files=files)
    assert answer.status_code == 200, answer.text


def test_each_prediction_is_counted_by_class_and_confidence(http):
    before = {c: value("imgclf_predicted_class_total", model="tiny", **{"class": c}) for c in ("red", "green", "blue")}
    seen = value("imgclf_prediction_confidence_count", model="tiny", version="1")
    confident = value("imgclf_prediction_confidence_bucket", model="tiny", version="1", le="0.5")
    classify(http, [0, 0, 2])
    http.post("/predict", json={"pixels": [solid(1, (4, 4)).tolist()]})
    after = {c: value("imgclf_predicted_class_total", model="tiny", **{"class": c}) for c in ("red", "green", "blue")}
    assert {c: after[c] - before[c] for c in after} == {"red": 2, "green": 1, "blue": 1}
    assert value("imgclf_prediction_confidence_count", model="tiny", version="1") - seen == 4
    # A pure colour scores exp(10) / (exp(10) + 2): about 0.9999, so no answer falls at or under 0.5.
    assert value("imgclf_prediction_confidence_bucket", model="tiny", version="1", le="0.5") == confident


def test_drift_rises_over_its_threshold_for_one_class_and_not_for_the_reference_mix(make_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    state = make_state(drift_window=30)
    with TestClient(app) as client:
        classify(client, [0, 1, 2] * 5)
        assert state.monitors[("tiny", 1)].drift() is None  # Not yet full: not reported.
        classify(client, [2, 1, 0] * 5)
        mixed = value("imgclf_prediction_drift", model="tiny", version="1")
        threshold = value("imgclf_prediction_drift_threshold", model="tiny", version="1")
        classify(client, [0] * 30)
        one_class = value("imgclf_prediction_drift", model="tiny", version="1")
    assert 0 < threshold < 0.2
    assert mixed < threshold  # The reference's own mix: no drift.
    assert one_class > threshold and one_class == pytest.approx(0.4591, abs=1e-3)  # JS(one class || thirds) in bits.


def test_monitoring_can_be_turned_off(make_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    state = make_state(monitoring=False)
    seen = value("imgclf_prediction_confidence_count", model="tiny", version="1")
    with TestClient(app) as client:
        classify(client, [0, 1])
    assert value("imgclf_prediction_confidence_count", model="tiny", version="1") == seen and not state.monitors


def test_the_reference_and_the_divergence():
    from training.interface import monitoring

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45]])
    ref = monitoring.reference(probabilities, "three images")
    assert ref["predicted_class_counts"] == [2, 1] and ref["images"] == 3
    assert ref["confidence_counts"][ref["confidence_buckets"].index(0.6)] == 1  # 0.55 is in (0.5, 0.6].
    assert sum(ref["confidence_counts"]) == 3
    assert monitoring.jensen_shannon([1, 0], [0, 1]) == 1 and monitoring.jensen_shannon([0.5, 0.5], [0.5, 0.5]) == 0
    # Many classes make a small window look drifted: the threshold grows with the classes.
    assert monitoring.null_quantile(np.full(200, 1 / 200), 1000) > 10 * monitoring.null_quantile(np.full(10, 1 / 10), 1000)
