"""The run directory: what a training run writes, with atomic writes and a guard against mixing runs.

Layout of ``RUN_DIR``:
  config.json      the resolved task config and the command's options
  labels.json      class ids and readable names, in model output order
  train.log        the run's log, including every skipped input file
  history.csv      per-epoch metrics (rewritten atomically each epoch)
  curves.png       accuracy and loss curves
  confusion.json   the most-confused class pairs
  metrics.json     val top-1/top-5, per-class accuracy, time, images/s, parameters
  model.keras      the trained float32 model (raw 0-255 pixels in, probabilities out)
  checkpoint/      the last completed epoch: model (with optimizer state) + state.json
  logs/            TensorBoard logs
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


class RunDirectoryError(ValueError):
    """The run directory cannot be used (it holds another run, or nothing to resume)."""


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide run and export files from other users.
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_model_atomic(model, path: Path) -> None:
    """Saves a Keras model through a temporary ``.keras`` file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_tree(source: Path, target: Path) -> None:
    """Copies a folder tree file by file (into ``target``, created if needed); a write error
    surfaces as its own OSError (``shutil.copytree`` would wrap it in a list)."""
    Path(target).mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).rglob("*")):
        destination = Path(target) / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            shutil.copyfile(path, destination)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class RunDirectory:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_model(self) -> Path:
        return self.path / "checkpoint" / "model.keras"

    @property
    def checkpoint_state(self) -> Path:
        return self.path / "checkpoint" / "state.json"

    def prepare(self, task: str, preset: str, resume: bool, settings: dict | None = None) -> dict | None:
        """Checks the folder can hold this run and creates it; returns the saved state when resuming."""
        state = self.check(task, preset, resume, settings)
        if not resume:
            self.path.mkdir(parents=True, exist_ok=True)
        return state

    def check(self, task: str, preset: str, resume: bool, settings: dict | None = None) -> dict | None:
        """Checks the folder can hold this run (changes nothing); returns the saved state when resuming.
        A run resumes with the settings it started with (``settings``: the task config as JSON, as
        config.json holds it); any that differ are named."""
        config_path = self.path / "config.json"
        if resume:
            if not config_path.is_file():
                raise RunDirectoryError(f"--resume: {self.path} holds no run to resume (no config.json)")
            saved = read_json(config_path)
            if saved.get("task", {}).get("name") != task or saved.get("preset") != preset:
                raise RunDirectoryError(
                    f"--resume: {self.path} holds a run of {saved.get('task', {}).get('name')} "
                    f"--preset {saved.get('preset')}, not {task} --preset {preset}"
                )
            changed = _changed_settings(saved.get("task", {}), settings or {})
            if changed:
                raise RunDirectoryError(
                    f"--resume: {self.path} was started with other settings: {'; '.join(changed)}; resume it with the options it started with"
                )
            return read_json(self.checkpoint_state) if self.checkpoint_state.is_file() else None
        if config_path.is_file():
            saved = read_json(config_path)
            raise RunDirectoryError(
                f"{self.path} already holds a run of {saved.get('task', {}).get('name')} "
                f"(preset {saved.get('preset')}); pass --resume to continue it or choose another --run-dir"
            )
        if self.path.exists() and any(self.path.iterdir()):
            raise RunDirectoryError(f"{self.path} is not empty and holds no run; choose an empty or new --run-dir")
        return None


def _changed_settings(saved: dict, settings: dict) -> list[str]:
    """``name was X, now Y`` for each setting both hold with different values (JSON-normalised)."""
    now = json.loads(json.dumps(settings))
    names = sorted(name for name in set(saved) & set(now) if saved[name] != now[name])
    return [f"{name} was {json.dumps(saved[name])}, now {json.dumps(now[name])}" for name in names]
