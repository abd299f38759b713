"""Closing the loop end to end with the demo model: serve it, send feedback that relabels a set of
images, retrain with ``--extra-data`` and ``--init-run``, export, and wait for the server's reload:
the served version goes up and the relabelled images now mostly get their new labels, where before
none did. Also the refusals of ``--extra-data`` and ``--init-run``."""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_feedback_retrains_the_served_model(demo_export, tmp_path):
    from imgclf_client import HttpClient
    from tests.live_server import start_server, stop_server
    from training.data import Limits, load_dataset

    store, exports, feedback = tmp_path / "store", tmp_path / "exports", tmp_path / "feedback"
    shutil.copytree(demo_export["store"], store, symlinks=True)
    shutil.copytree(demo_export["exports"], exports, symlinks=True)
    env = {
        "BENTOML_HOME": str(store),
        "IMGCLF_MODELS": "digits-cnn",
        "IMGCLF_FEEDBACK_ROOT": str(feedback),
        "IMGCLF_POLL_SECONDS": "1",
        "IMGCLF_WORKERS": "1",
    }
    (tmp_path / "server").mkdir()
    server = start_server(tmp_path / "server", env)
    try:
        with HttpClient(server.http) as client:
            # Twelve validation digits, each relabelled as a digit that is neither its own nor the model's answer.
            validation = load_dataset("digits", None, (32, 32), Limits(300, 100)).validation
            images = [_png(pixels) for pixels in validation.images[:12]]
            before = [classes[0].label for classes in client.classify(images, top_k=1)]
            corrected = []
            for answer, truth in zip(before, validation.labels[:12]):
                label = (int(answer) + 1) % 10
                corrected.append(str(label if label != truth else (label + 1) % 10))
            assert not any(b == c for b, c in zip(before, corrected))
            for image, label in zip(images, corrected):
                client.feedback(image, label)
            assert sorted(p.parent.name for p in feedback.rglob("*.png")) == sorted(corrected)

            retrain = run_cli(
                "train", "demo", "--preset", "smoke", "--init-run", str(demo_export["run"]), "--extra-data", str(feedback),
                "--extra-repeat", "30", "--epochs", "4", "--run-dir", str(tmp_path / "retrained"), "--quiet", "--export-root", str(exports),
                env={"BENTOML_HOME": str(store)},
            )  # fmt: skip
            assert retrain.returncode == 0, retrain.stderr[-3000:]
            deadline = time.monotonic() + 60
            while client.model("digits-cnn").version != 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert client.model("digits-cnn").version == 2  # The hot reload serves the new export.
            after = client.classify(images, top_k=1)
        log = (tmp_path / "retrained" / "train.log").read_text()
    finally:
        stop_server(server)
    assert after.model == "digits-cnn" and after.version == 2
    now = [classes[0].label for classes in after]
    assert sum(n == c for n, c in zip(now, corrected)) >= 9, (now, corrected)  # Mostly corrected now; none were before.
    assert "extra data: 12 images" in log and "starting from" in log


def test_an_extra_folder_with_an_unknown_label_is_refused_by_name(tmp_path):
    (tmp_path / "extra" / "3").mkdir(parents=True)
    (tmp_path / "extra" / "cat").mkdir()
    (tmp_path / "extra" / "_unlabelled").mkdir()  # Not a class: the server's collected images.
    result = run_cli("train", "demo", "--preset", "smoke", "--extra-data", str(tmp_path / "extra"), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "folder 'cat' is not one of the task's 10 class ids (0, 1, 2, 3, 4, ...)" in result.stderr
    assert not (tmp_path / "run").exists()  # Refused before anything was written.


def test_init_run_must_be_a_finished_run_of_the_same_task(tmp_path):
    other = tmp_path / "task1-run"
    other.mkdir()
    (other / "model.keras").write_bytes(b"")
    (other / "config.json").write_text('{"task": {"name": "task1"}}')
    result = run_cli("train", "demo", "--preset", "smoke", "--init-run", str(other), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "is a task1 run; task demo starts from a demo run" in result.stderr
    empty = run_cli("train", "demo", "--preset", "smoke", "--init-run", str(tmp_path), "--run-dir", str(tmp_path / "run2"))
    assert empty.returncode == 2 and "holds no finished run" in empty.stderr
