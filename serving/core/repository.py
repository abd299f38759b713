"""The served models: loaded once per worker from the BentoML model store (what `training export` put there).

Each model version is a `ServedModel` with its labels, input size and model card, running on ONNX
Runtime (default) or, where configured, on TensorFlow (the SavedModel's ``serving_default``).
TensorFlow is imported only in that case.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from serving.core import metrics
from serving.core.errors import InvalidInput, ModelNotFound
from serving.core.settings import Settings
from training.interface.contract import INPUT_NAME, OUTPUT_NAME, SERVING_SIGNATURE, STORE_MODULE

log = logging.getLogger("imgclf.serving")


@dataclasses.dataclass
class ServedModel:
    name: str
    version: int
    path: Path
    card: dict
    labels: list[str]
    names: list[str]
    runtime: str
    run: Callable[[np.ndarray], np.ndarray] = dataclasses.field(repr=False)
    # For a request that has the worker to itself: the same model on every core (lower latency).
    run_alone: Callable[[np.ndarray], np.ndarray] | None = dataclasses.field(default=None, repr=False)

    @property
    def input_size(self) -> tuple[int, int]:
        height, width = self.card["input_size"]
        return int(height), int(width)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def predict(self, pixels: np.ndarray, alone: bool = False) -> np.ndarray:
        """Probabilities for float32 ``[batch, H, W, 3]`` pixels (0-255) at the model's input size.

        ``alone``: nothing else is running or waiting on this worker, so use every core."""
        run = self.run_alone if alone and self.run_alone is not None else self.run
        return run(np.ascontiguousarray(pixels, dtype=np.float32))

    @property
    def signature_defs(self) -> dict:
        """The SavedModel's signatures in TensorFlow Serving's metadata form, as the export read
        them off the written SavedModel (`training.export.saved_model.signature_defs`)."""
        recorded = self.card.get("signature_defs")
        if not recorded:
            raise ModelNotFound(
                f"{self.name} version {self.version} was exported before model cards recorded the "
                "SavedModel's signatures; export it again to describe it to TensorFlow Serving clients"
            )
        return recorded

    def describe(self) -> dict:
        card = self.card
        return {
            "name": self.name,
            "version": self.version,
            "runtime": self.runtime,
            "task": card.get("task", {}),
            "dataset": card.get("dataset", {}),
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "input": card.get("input"),
            "preprocessing": card.get("preprocessing"),
            "metrics": card.get("metrics", {}),
            "training": {key: value for key, value in card.get("training", {}).items() if key in ("started", "seconds", "images_per_second")},
            "exported_at": card.get("exported_at"),
            "labels": self.labels,
            "names": self.names,
        }


def _onnx_runner(model: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime session of the serialized ``model`` with ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Idle pool threads spin by default: on a small machine that takes a core from the event loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda pixels: session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]


def _tensorflow_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf  # Only for models configured to run on TensorFlow.

    signature = tf.saved_model.load(str(path)).signatures[SERVING_SIGNATURE]
    return lambda pixels: signature(pixels=tf.constant(pixels))[OUTPUT_NAME].numpy()


class ModelLoadError(Exception):
    """A stored version that must not be served: files that differ from its card, or a model that does not load or answer."""


def verified_bytes(path: Path, card: dict, name: str) -> bytes:
    """The bytes of ``name`` (a file of the version folder), read once and checked against the
    SHA-256 sum its card recorded at export, when the export's parity check passed on exactly
    those bytes."""
    try:
        data = (path / name).read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{name} cannot be read: {error.strerror}") from None
    expected = card.get("artifacts", {}).get(name)
    # An older card without checksums: the load and warm-up checks still apply.
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise ModelLoadError(f"{name} does not match the checksum its model card recorded at export (corrupt or changed)")
    return data


def _check_answers(model: ServedModel, probabilities: np.ndarray, batch: int) -> None:
    if probabilities.shape != (batch, model.num_classes):
        raise ModelLoadError(f"the model answers shape {list(probabilities.shape)}, not [{batch}, {model.num_classes}] for its labels")
    if not np.isfinite(probabilities).all() or np.abs(probabilities.sum(axis=1) - 1).max() > 1e-3:
        raise ModelLoadError("the model's answers are not probabilities (not finite, or rows do not sum to 1)")


def load_version(name: str, version: int, path: Path, card: dict, settings: Settings) -> ServedModel:
    """Loads, checks and warms up one stored version; `ModelLoadError` says why it cannot be served."""
    try:
        return _load_version(name, version, path, card, settings)
    except ModelLoadError as error:
        raise ModelLoadError(f"{name} version {version} cannot be served: {error}") from None
    except Exception as error:  # A runtime that cannot load the file: name it, never crash the worker.
        raise ModelLoadError(f"{name} version {version} cannot be served: {type(error).__name__}: {error}") from None


def _load_version(name: str, version: int, path: Path, card: dict, settings: Settings) -> ServedModel:
    started = time.perf_counter()
    labels = json.loads(verified_bytes(path, card, "labels.json"))
    run_alone = None
    if name in settings.tensorflow_models:
        runtime, run = "tensorflow", _tensorflow_runner(path)
    else:
        int8 = card.get("int8", {})
        use_int8 = settings.prefer_int8 and int8.get("usable") and (path / int8.get("file", "")).is_file()
        onnx_file = int8["file"] if use_int8 else "model.onnx"
        onnx_model = verified_bytes(path, card, onnx_file)  # Read once: checked, then both sessions load it.
        runtime, run = ("onnxruntime-int8" if use_int8 else "onnxruntime"), _onnx_runner(onnx_model, settings.onnx_threads)
        if 0 < settings.onnx_threads < (os.cpu_count() or 1):
            run_alone = _onnx_runner(onnx_model, 0)
    model = ServedModel(name, version, path, card, labels["class_ids"], labels["class_names"], runtime, run, run_alone)
    loaded = time.perf_counter()
    # Warm up, so that the first request does not pay for the first run's allocations, up to the
    # largest batch a call can get: ONNX Runtime's memory arena then has its full size from the
    # start instead of growing under load (which a soak run read as a leak).
    for batch in sorted({1, 8, settings.max_batch}):
        for alone in (False, True) if run_alone else (False,):
            _check_answers(model, model.predict(np.full((batch, *model.input_size, 3), 127.0, np.float32), alone), batch)
    log.info(
        "loaded %s version %d (%s, %d classes, input %dx%d) in %.2f s, warm-up %.2f s",
        name,
        version,
        runtime,
        model.num_classes,
        *model.input_size,
        time.perf_counter() - started,
        time.perf_counter() - loaded,
    )
    return model


def _stored_versions() -> dict[str, dict[int, object]]:
    """Every imgclf model version in the BentoML store (or the served bento)."""
    import bentoml

    available: dict[str, dict[int, object]] = {}
    for stored in bentoml.models.list():
        if stored.info.module == STORE_MODULE and str(stored.tag.version).isdigit():
            available.setdefault(stored.tag.name, {})[int(stored.tag.version)] = stored
    return available


def _folder_state(path: Path) -> tuple:
    """Changes whenever a file of the folder does (a version still being copied into the store)."""
    return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()))


class ModelRepository:
    """The loaded versions, by model name. Models named without a version follow the store: the
    newest ``settings.keep_versions`` versions stay loaded, and `refresh` loads new ones and retires
    old ones, swapping the whole table at once (a request holds the version it started with)."""

    def __init__(self, models: dict[str, dict[int, ServedModel]], default: str, settings: Settings | None = None, followed: tuple[str, ...] = ()):
        self.models, self.default = models, default
        self.settings, self.followed = settings, followed
        metrics.SERVED_MODELS.update(models)
        self.refused: dict[tuple[str, int], tuple] = {}  # Versions that failed their checks, and their folder's state then.

    @staticmethod
    def configured(settings: Settings, available: dict | None = None) -> tuple[dict[str, set[int]], list[str]]:
        """(pinned versions by name, names that follow the store) of what IMGCLF_MODELS asks for, each
        checked against the store; `ModelNotFound` names what is missing. Cheap: no model is loaded,
        so `serving.service` calls it at import, and `bentoml serve` fails before starting workers."""
        available = _stored_versions() if available is None else available
        pinned: dict[str, set[int]] = {}
        followed: list[str] = []
        for entry in settings.models or tuple(sorted(available)):
            name, _, version = entry.partition(":")
            if name not in available:
                raise ModelNotFound(
                    f"IMGCLF_MODELS: model {name!r} is not in the BentoML store; exported models: {', '.join(sorted(available)) or 'none'}"
                )
            if version and (not version.isdigit() or int(version) not in available[name]):
                raise ModelNotFound(f"IMGCLF_MODELS: model {name} has no version {version}; versions: {sorted(available[name])}")
            if version:
                pinned.setdefault(name, set()).add(int(version))
            elif name not in followed:
                followed.append(name)
        if not pinned and not followed:
            raise ModelNotFound("the BentoML store holds no exported imgclf model: run `python -m training train ...` or `... export RUN_DIR` first")
        return pinned, followed

    @classmethod
    def from_store(cls, settings: Settings) -> ModelRepository:
        """Loads the configured models (default: the latest version(s) of every imgclf model in the store)."""
        available = _stored_versions()
        pinned, followed = cls.configured(settings, available)
        repository = cls({}, "", settings, tuple(followed))
        models: dict[str, dict[int, ServedModel]] = {}
        for name, versions in pinned.items():  # Named explicitly: a version that cannot be served stops the start.
            for version in sorted(versions):
                stored = available[name][version]
                models.setdefault(name, {})[version] = load_version(name, version, Path(stored.path), dict(stored.info.metadata), settings)
        for name in followed:  # The newest versions that pass their checks; refused ones are logged and skipped.
            loaded = models.setdefault(name, {})
            for version in sorted(available[name], reverse=True):
                if len([v for v in loaded if v not in pinned.get(name, ())]) >= settings.keep_versions:
                    break
                if version in loaded:
                    continue
                stored = available[name][version]
                try:
                    loaded[version] = load_version(name, version, Path(stored.path), dict(stored.info.metadata), settings)
                except ModelLoadError as error:
                    repository.refused[(name, version)] = _folder_state(Path(stored.path))
                    log.error("refused %s", error)
            if not loaded:
                raise ModelLoadError(f"no version of {name} can be served (see the errors above)")
        default = settings.default_model or next(iter(models))
        if default not in models:
            raise ModelNotFound(f"IMGCLF_DEFAULT_MODEL {default!r} is not among the served models: {', '.join(models)}")
        repository.models, repository.default = models, default
        return repository

    def refresh(self) -> list[str]:
        """Loads (and checks, and warms up) new stored versions of the followed models, then swaps
        them in and retires versions past the newest ``keep_versions``. A version that fails its
        checks is refused, logged once, and tried again only if its files change. Returns what
        changed, in words. Runs on a worker thread; the table swap is one assignment."""
        if not self.followed:
            return []
        available = _stored_versions()
        keep = self.settings.keep_versions
        models = {name: dict(versions) for name, versions in self.models.items()}
        changes = []
        for name in self.followed:
            stored = available.get(name, {})
            for version in sorted(stored)[-keep:]:
                if version in models[name] or version < max(models[name]):
                    continue
                path = Path(stored[version].path)
                state = _folder_state(path)
                if self.refused.get((name, version)) == state:
                    continue
                try:
                    models[name][version] = load_version(name, version, path, dict(stored[version].info.metadata), self.settings)
                except ModelLoadError as error:
                    self.refused[(name, version)] = state
                    metrics.MODEL_LOADS.labels(name, "refused").inc()
                    log.error("refused %s; still serving versions %s", error, sorted(models[name]))
                    changes.append(f"refused {name} version {version}: {error}")
                    continue
                metrics.MODEL_LOADS.labels(name, "loaded").inc()
                changes.append(f"loaded {name} version {version}")
                log.info("now serving %s version %d", name, version)
            for version in sorted(models[name])[:-keep]:
                del models[name][version]
                changes.append(f"retired {name} version {version}")
                log.info("retired %s version %d", name, version)
        if any(change.startswith(("loaded", "retired")) for change in changes):
            self.models = models
        return changes

    def get(self, name: str | None = None, version: int | str | None = None) -> ServedModel:
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"model must be a model's name (a string), got {type(name).__name__}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (int, str))):
            raise InvalidInput(f"version must be a version number, got {type(version).__name__}")
        name = name or self.default
        versions = self.models.get(name)
        if versions is None:
            raise ModelNotFound(f"model {name!r} is not served; served models: {', '.join(sorted(self.models))}")
        if version in (None, "", 0, "0"):
            return versions[max(versions)]
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise ModelNotFound(f"model {name} has no version {version!r}; served versions: {sorted(versions)}") from None
        if number not in versions:
            raise ModelNotFound(f"model {name} has no version {number}; served versions: {sorted(versions)}")
        return versions[number]

    def describe(self) -> list[dict]:
        return [
            {
                "name": name,
                "versions": sorted(versions),
                "default": name == self.default,
                **{k: v for k, v in versions[max(versions)].describe().items() if k != "name"},
            }
            for name, versions in sorted(self.models.items())
        ]
