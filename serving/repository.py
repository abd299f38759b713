"""The served models: loaded once per worker from the BentoML model store (what `training export` put there).

Each model version is a `ServedModel` with its labels, input size and model card, running on ONNX
Runtime (default) or, where configured, on TensorFlow (the SavedModel's ``serving_default``).
TensorFlow is imported only in that case.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from serving.errors import ModelNotFound
from serving.settings import Settings

log = logging.getLogger("imgclf.serving")

STORE_MODULE = "imgclf"
INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"


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

    def describe(self) -> dict:
        card = self.card
        return {
            "name": self.name, "version": self.version, "runtime": self.runtime,
            "task": card.get("task", {}), "dataset": card.get("dataset", {}),
            "input_size": list(self.input_size), "num_classes": self.num_classes,
            "input": card.get("input"), "preprocessing": card.get("preprocessing"),
            "metrics": card.get("metrics", {}), "labels": self.labels, "names": self.names,
        }


def _onnx_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime session with ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Idle pool threads spin by default: on a small machine that takes a core from the event loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda pixels: session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]


def _tensorflow_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf  # Only for models configured to run on TensorFlow.

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda pixels: signature(pixels=tf.constant(pixels))[OUTPUT_NAME].numpy()


def load_version(name: str, version: int, path: Path, card: dict, settings: Settings) -> ServedModel:
    labels = json.loads((path / "labels.json").read_text())
    run_alone = None
    if name in settings.tensorflow_models:
        runtime, run = "tensorflow", _tensorflow_runner(path)
    else:
        int8 = card.get("int8", {})
        use_int8 = settings.prefer_int8 and int8.get("usable") and (path / int8.get("file", "")).is_file()
        onnx_file = int8["file"] if use_int8 else "model.onnx"
        runtime, run = ("onnxruntime-int8" if use_int8 else "onnxruntime"), _onnx_runner(path / onnx_file, settings.onnx_threads)
        if 0 < settings.onnx_threads < (os.cpu_count() or 1):
            run_alone = _onnx_runner(path / onnx_file, 0)
    model = ServedModel(name, version, path, card, labels["class_ids"], labels["class_names"], runtime, run, run_alone)
    # Warm up, so that the first request does not pay for the first run's allocations.
    for batch in (1, 8):
        for alone in (False, True) if run_alone else (False,):
            model.predict(np.zeros((batch, *model.input_size, 3), np.float32), alone)
    log.info("loaded %s version %d (%s, %d classes, input %dx%d)", name, version, runtime, model.num_classes, *model.input_size)
    return model


class ModelRepository:
    def __init__(self, models: dict[str, dict[int, ServedModel]], default: str):
        self.models, self.default = models, default

    @classmethod
    def from_store(cls, settings: Settings) -> "ModelRepository":
        """Loads the configured models (default: the latest version of every imgclf model in the store)."""
        import bentoml

        available: dict[str, dict[int, object]] = {}
        for stored in bentoml.models.list():
            if stored.info.module == STORE_MODULE and str(stored.tag.version).isdigit():
                available.setdefault(stored.tag.name, {})[int(stored.tag.version)] = stored
        wanted: dict[str, set[int]] = {}
        for entry in settings.models or tuple(sorted(available)):
            name, _, version = entry.partition(":")
            if name not in available:
                raise ModelNotFound(f"model {name!r} is not in the BentoML store; exported models: {', '.join(sorted(available)) or 'none'}")
            if version and (not version.isdigit() or int(version) not in available[name]):
                raise ModelNotFound(f"model {name} has no version {version}; versions: {sorted(available[name])}")
            wanted.setdefault(name, set()).add(int(version) if version else max(available[name]))
        if not wanted:
            raise ModelNotFound("the BentoML store holds no exported imgclf model: run `python -m training train ...` or `... export RUN_DIR` first")
        models: dict[str, dict[int, ServedModel]] = {}
        for name, versions in wanted.items():
            for version in sorted(versions):
                stored = available[name][version]
                models.setdefault(name, {})[version] = load_version(name, version, Path(stored.path), dict(stored.info.metadata), settings)
        default = settings.default_model or next(iter(models))
        if default not in models:
            raise ModelNotFound(f"IMGCLF_DEFAULT_MODEL {default!r} is not among the served models: {', '.join(models)}")
        return cls(models, default)

    def get(self, name: str | None = None, version: int | str | None = None) -> ServedModel:
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
        return [{"name": name, "versions": sorted(versions), "default": name == self.default,
                 **{k: v for k, v in versions[max(versions)].describe().items() if k != "name"}}
                for name, versions in sorted(self.models.items())]
