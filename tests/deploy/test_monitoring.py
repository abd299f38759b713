"""deploy/monitoring: the Prometheus alert rules are valid and fire when they should (promtool's own
checks and rule unit tests), the Grafana dashboard is well-formed, and every metric either names is
exported by a live server, whose drift gauge rises over its threshold for a stream of one predicted
class while the validation images keep it under."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES, RULE_TESTS, DASHBOARD = MONITORING / "alerts.yaml", MONITORING / "alerts.test.yaml", MONITORING / "grafana-dashboard.json"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is not installed: `make monitoring-tools` installs Debian's prometheus package"
    return found


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "SUCCESS: 4 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, timeout=60, cwd=MONITORING)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def named_metrics() -> set[str]:
    """Every imgclf metric the rules and the dashboard's queries name."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries.append(dashboard["templating"]["list"][1]["definition"])
    return set(re.findall(r"\bimgclf_[a-z_]+", RULES.read_text() + "\n".join(queries)))


def test_the_dashboard_is_grafana_json_over_one_prometheus_source():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "imgclf" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert all(target["expr"].count("(") == target["expr"].count(")") for target in panel["targets"]), panel["title"]
    assert {"imgclf_prediction_drift", "imgclf_prediction_confidence_bucket", "imgclf_predicted_class_total"} <= named_metrics()


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf'^{name}{{model="digits-cnn",version="1"}} (\S+)$', text, flags=re.M)
    return float(found[1]) if found else None


@pytest.mark.slow
def test_a_live_server_exports_every_named_metric_and_its_drift_follows_the_stream(smoke_runs, tmp_path):
    from tests.live_server import start_server, stop_server
    from training.data import Limits, load_dataset

    # The demo's smoke run validated on 100 images: the card's reference is the model's answers to them.
    validation = load_dataset("digits", None, (32, 32), Limits(300, 100)).validation.images
    window = len(validation)
    # A BentoML home of its own (the demo model copied from the session's store): BentoML keeps the
    # workers' metric files in BENTOML_HOME/prometheus_multiproc_dir and clears it when a server
    # starts, which would hide the session server's counters from its own /metrics.
    home = tmp_path / "bentoml"
    shutil.copytree(Path(os.environ["BENTOML_HOME"]) / "models" / "digits-cnn", home / "models" / "digits-cnn", symlinks=True)
    env = {
        "BENTOML_HOME": str(home),
        "IMGCLF_MODELS": "digits-cnn",
        "IMGCLF_WORKERS": "1",
        "IMGCLF_DRIFT_WINDOW": str(window),
        "IMGCLF_MAX_BATCH": "50",
    }
    server = start_server(tmp_path, env)
    try:

        def predict(pixels: np.ndarray) -> list[int]:
            answer = httpx.post(f"{server.http}/predict", json={"pixels": pixels.tolist()}, timeout=60)
            assert answer.status_code == 200, answer.text
            return np.argmax(answer.json()["probabilities"], axis=1).tolist()

        def metrics() -> str:
            return httpx.get(f"{server.http}/metrics").text

        answers = []
        for start in range(0, window, 50):
            answers += predict(validation[start : start + 50])
        text = metrics()
        threshold, validation_drift = _gauge(text, "imgclf_prediction_drift_threshold"), _gauge(text, "imgclf_prediction_drift")
        # One predicted class: the images the model answers with its most frequent answer, over and over.
        common = max(set(answers), key=answers.count)
        same = validation[[index for index, answer in enumerate(answers) if answer == common]]
        stream = np.concatenate([same] * (window // len(same) + 1))[:window]
        for start in range(0, window, 50):
            assert set(predict(stream[start : start + 50])) == {common}
        text = metrics()
        one_class = _gauge(text, "imgclf_prediction_drift")
    finally:
        stop_server(server)
    assert threshold is not None and 0 < threshold < 0.5
    assert validation_drift is not None and validation_drift < threshold, (validation_drift, threshold)
    assert one_class is not None and one_class > threshold, (one_class, threshold)
    exported = set(re.findall(r"^(imgclf_[a-z_]+)", text, flags=re.M))
    missing = named_metrics() - exported
    assert not missing, f"named by deploy/monitoring but not on /metrics: {sorted(missing)}"
