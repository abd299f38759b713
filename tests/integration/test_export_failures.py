"""Bad input and crashes during export: a clear error, and earlier versions stay intact and servable.

Read-only and full disks are real: the export runs in a user + mount namespace (`unshare -rm`)
where the export root is a read-only bind mount, or a small tmpfs filled up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import run_cli
from tests.integration.export_check import check

pytestmark = pytest.mark.slow

NAME = "digits-cnn"


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="unshare -rm (user + mount namespaces) unavailable")


def copy_previous(demo_export: dict, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(demo_export["exports"], tmp_path / "exports", symlinks=True)
    shutil.copytree(demo_export["store"], tmp_path / "store", symlinks=True)
    return tmp_path / "exports", tmp_path / "store"


def store_versions(store: Path) -> list[str]:
    folder = store / "models" / NAME
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def _export_in_namespace(setup: str, root: Path, store: Path, run: Path, report: Path) -> subprocess.CompletedProcess:
    """Runs ``setup`` (shell, as namespace root), then the export CLI, then the version check into ``report``."""
    script = f"""
set -e
{setup}
set +e
BENTOML_HOME={store} {sys.executable} -m training export {run} --export-root {root}
status=$?
{sys.executable} -m tests.integration.export_check {root} {NAME} > {report}
exit $status
"""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(["unshare", "-rm", "bash", "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


def test_run_folder_without_a_model_is_refused(tmp_path):
    missing = run_cli("export", str(tmp_path / "nowhere"), "--export-root", str(tmp_path / "exports"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("export", str(tmp_path / "empty"), "--export-root", str(tmp_path / "exports"))
    assert empty.returncode == 2
    assert "holds no finished training run to export (missing model.keras, config.json, labels.json)" in empty.stderr
    assert not (tmp_path / "exports").exists()


def test_model_whose_input_is_not_an_image_is_refused(demo_run, tmp_path):
    import keras

    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "labels.json", "metrics.json"):
        shutil.copy(demo_run / name, run / name)
    inputs = keras.Input(shape=(10,), name="features")
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs)).save(run / "model.keras")
    result = run_cli("export", str(run), "--export-root", str(tmp_path / "exports"))
    assert result.returncode == 2
    assert "takes input of shape (None, 10), not an RGB image" in result.stderr
    assert check(tmp_path / "exports" / NAME) == {"complete": [], "incomplete": [], "temporary": []}


@pytest.mark.parametrize("name", ["../escape", "a/b", "Upper", "with space", "-dash", "x" * 64, "tag:1", ""])
def test_names_a_store_tag_cannot_hold_are_refused(name, demo_run, tmp_path):
    result = run_cli("export", str(demo_run), "--export-root", str(tmp_path / "exports"), f"--name={name}")
    assert result.returncode == 2
    assert f"model name {name!r} is not valid" in result.stderr and "no path separators" in result.stderr
    assert not (tmp_path / "exports").exists() and not (tmp_path / "escape").exists()


def test_bad_name_is_refused_before_training(tmp_path):
    result = run_cli("train", "demo", "--preset", "smoke", "--run-dir", str(tmp_path / "run"), "--name", "a/b")
    assert result.returncode == 2 and "model name 'a/b' is not valid" in result.stderr
    assert not (tmp_path / "run").exists()


@needs_namespaces
def test_read_only_export_root_fails_clearly_and_keeps_previous_versions(demo_export, tmp_path):
    root, store = copy_previous(demo_export, tmp_path)
    setup = f"mount --bind {root} {root} && mount -o remount,ro,bind {root}"
    result = _export_in_namespace(setup, root, store, demo_export["run"], tmp_path / "report.json")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot write" in result.stderr and "Read-only file system" in result.stderr
    assert json.loads((tmp_path / "report.json").read_text()) == {"complete": [1], "incomplete": [], "temporary": []}
    assert store_versions(store) == ["1"]


@needs_namespaces
def test_full_disk_fails_clearly_and_keeps_previous_versions(demo_export, tmp_path):
    root, store = copy_previous(demo_export, tmp_path)
    shutil.copytree(root, tmp_path / "saved")
    # A tmpfs holding version 1, filled up until 1 MiB is left: too little for the new version.
    setup = (
        f"mount -t tmpfs -o size=24m tmpfs {root} && cp -a {tmp_path / 'saved'}/. {root}/ && "
        f"(dd if=/dev/zero of={root}/filler bs=1M 2>/dev/null || true) && truncate -s -1M {root}/filler"
    )
    result = _export_in_namespace(setup, root, store, demo_export["run"], tmp_path / "report.json")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot write the export of digits-cnn" in result.stderr and "No space left on device" in result.stderr
    assert "earlier versions are untouched" in result.stderr
    assert json.loads((tmp_path / "report.json").read_text()) == {"complete": [1], "incomplete": [], "temporary": []}
    assert store_versions(store) == ["1"]


def test_export_killed_midway_leaves_only_complete_versions(demo_export, tmp_path):
    root, store = copy_previous(demo_export, tmp_path)
    env = {"BENTOML_HOME": str(store)}
    scratch_root = Path(tempfile.gettempdir())
    for stage in ("staged", "stored"):
        result = run_cli("export", str(demo_export["run"]), "--export-root", str(root), env={**env, "IMGCLF_EXPORT_CRASH_AT": stage})
        assert result.returncode == -signal.SIGKILL, (stage, result.stderr[-2000:])
        report = check(root / NAME)
        # A server scanning the root sees version 1 only; anything else is a hidden temporary folder.
        assert report["complete"] == [1] and report["incomplete"] == [], (stage, report)
        assert all(name.startswith(".tmp-") for name in report["temporary"])
        assert check(store / "models" / NAME)["incomplete"] == [], stage
    # The "stored" crash committed version 2 to the store (complete, a copy of the staged export).
    assert store_versions(store) == ["1", "2"]
    assert check(store / "models" / NAME)["incomplete"] == []
    recovered = run_cli("export", str(demo_export["run"]), "--export-root", str(root), env=env)
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert "exported digits-cnn version 3" in recovered.stdout
    assert check(root / NAME) == {"complete": [1, 3], "incomplete": [], "temporary": []}
    assert store_versions(store) == ["1", "2", "3"]
    leftovers = [p for p in scratch_root.glob("imgclf-export-*") if not _alive(int(p.name.split("-")[2]))]
    assert leftovers == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
