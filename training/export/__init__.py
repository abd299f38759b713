"""Exporting a trained run: TF-Serving SavedModel + verified ONNX + model card, into the BentoML store.

``export_run(RUN_DIR)`` writes ``EXPORT_ROOT/<name>/<version>/``::

    saved_model.pb, variables/, fingerprint.pb   TensorFlow Serving layout, signatures
                                                 serving_default and classify (see saved_model.py)
    assets/labels.txt, assets/names.txt          one label per line, in output order
    model.onnx                                   pixels -> probabilities, contract in its metadata
    labels.json                                  class ids and readable names
    model_card.json                              see card.py

and saves the same folder as the BentoML model ``<name>:<version>``. Versions are integers that
increase with each export of a name (across the export root and the store).

Atomicity: everything is written and verified in a private scratch folder, copied beside the
versions as ``EXPORT_ROOT/<name>/.tmp-<pid>-...`` (TensorFlow Serving ignores it: it loads only
integer folder names), then, under a lock, saved to the store and renamed into place. A crash
at any point leaves only complete versions; a stale temporary folder is removed by the next
export of that name. Write errors (read-only or full disk) become an `ExportError`.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

from training.export.card import CARD_FILE
from training.run_dir import copy_tree, read_json, write_json

log = logging.getLogger("training")

EXPORT_ROOT_VARIABLE = "IMGCLF_EXPORT_ROOT"
DEFAULT_EXPORT_ROOT = "exports"
# A BentoML tag name: lowercase letters, digits, '-', '_' and '.', starting and ending alphanumeric.
NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")
STAGING_PREFIX = ".tmp-"
SCRATCH_PREFIX = "imgclf-export-"
CRASH_VARIABLE = "IMGCLF_EXPORT_CRASH_AT"


class ExportError(ValueError):
    """The run cannot be exported (no model, not an image model, bad name, unwritable root)."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    name: str
    version: int
    path: Path
    store_tag: str | None
    card: dict


def default_export_root() -> Path:
    return Path(os.environ.get(EXPORT_ROOT_VARIABLE) or DEFAULT_EXPORT_ROOT)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ExportError(
            f"model name {name!r} is not valid: use 1-63 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (no path separators or spaces)"
        )
    return name


def default_name(run_config: dict) -> str:
    """The task's stable export name; for a task trained on another dataset, derived from that data."""
    from training import tasks

    task = run_config["task"]
    registered = tasks.TASKS.get(task["name"])
    name = task.get("export_name") or (registered.export_name if registered else task["name"])
    if registered is not None and task["dataset"] != registered.dataset:
        source = Path(run_config.get("data_dir") or task["dataset"]).name
        stem = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-") or task["dataset"]
        name = f"{stem}-{name.split('-', 1)[-1]}"
    return check_name(name[:63].rstrip("-_."))


def _read_run(run_dir: Path) -> tuple[dict, dict, dict]:
    if not run_dir.is_dir():
        raise ExportError(f"run folder {run_dir} does not exist")
    missing = [name for name in ("model.keras", "config.json", "labels.json") if not (run_dir / name).is_file()]
    if missing:
        raise ExportError(f"{run_dir} holds no finished training run to export (missing {', '.join(missing)})")
    try:
        config, labels = read_json(run_dir / "config.json"), read_json(run_dir / "labels.json")
        metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    except json.JSONDecodeError as error:
        raise ExportError(f"{run_dir}: unreadable run file: {error}") from error
    return config, labels, metrics


def _check_model(model, labels: dict, run_dir: Path) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{run_dir}/model.keras has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "an image classifier has one image input and one probabilities output")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or not all(isinstance(v, int) and v > 0 for v in shape[1:3]):
        raise ExportError(f"{run_dir}/model.keras takes input of shape {shape}, not an RGB image "
                          "[batch, height, width, 3] of fixed size")
    classes = len(labels["class_ids"])
    if tuple(model.outputs[0].shape) != (None, classes):
        raise ExportError(f"{run_dir}/model.keras outputs shape {tuple(model.outputs[0].shape)}, "
                          f"but labels.json lists {classes} classes")


def _sample_images(run_config: dict, size: tuple[int, int], data_dir: str | None):
    """Up to 64 real images at the input size from the run's dataset, or None if it is not at hand."""
    from training.data import Limits, load_dataset
    from training.export.parity import SAMPLE_COUNT

    import numpy as np

    task = run_config["task"]
    data_dir = data_dir or run_config.get("data_dir")
    try:
        dataset = load_dataset(task["dataset"], data_dir, size, Limits(SAMPLE_COUNT, SAMPLE_COUNT))
    except Exception as error:  # Parity then runs on random images; the card says so.
        log.warning("parity check: dataset %s not at hand (%s); using random images", task["dataset"], error)
        return None, None
    images = np.concatenate([dataset.validation.images, dataset.train.images])[:SAMPLE_COUNT]
    return images, f"{task['dataset']} validation/training images"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(folder: Path, prefix: str = STAGING_PREFIX) -> None:
    """Removes temporary folders left in ``folder`` by exports whose process is gone."""
    for path in folder.glob(f"{prefix}*"):
        match = re.match(rf"{re.escape(prefix)}(\d+)-", path.name)
        if match and not _pid_alive(int(match.group(1))):
            log.info("removing %s, left by an interrupted export", path)
            shutil.rmtree(path, ignore_errors=True)


def existing_versions(folder: Path) -> list[int]:
    """The complete versions in an export folder: integer-named folders holding a model card."""
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / CARD_FILE).is_file())


def _crash_point(stage: str) -> None:
    """Test hook: ``IMGCLF_EXPORT_CRASH_AT=<stage>`` kills the process there, as a crash would."""
    if os.environ.get(CRASH_VARIABLE) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def export_run(run_dir: str | Path, export_root: str | Path | None = None, name: str | None = None,
               store: bool = True, data_dir: str | None = None, int8: bool = False) -> ExportResult:
    """Exports the trained model of ``run_dir``; see the module docstring for what is written.

    ``int8`` adds ``model.int8.onnx``, measured on the run's validation images (see quantize.py).
    """
    run_dir = Path(run_dir)
    root = Path(export_root) if export_root else default_export_root()
    if name is not None:
        check_name(name)
    run_config, labels, metrics = _read_run(run_dir)
    name = name or default_name(run_config)
    folder = root / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        probe.rmdir()  # Fail now, not after minutes of converting, on a read-only root.
        _remove_stale(folder)
        _remove_stale(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    except OSError as error:
        raise ExportError(f"cannot write exports under {root}: {error.strerror or error}") from error
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        card = _build(run_dir, run_config, labels, metrics, name, scratch, data_dir, int8)
        return _publish(name, folder, scratch, card, store)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG):
            raise ExportError(f"cannot write the export of {name} under {root}: {error.strerror} "
                              f"({error.filename or 'while writing'}); earlier versions are untouched") from error
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build(run_dir: Path, run_config: dict, labels: dict, metrics: dict, name: str, scratch: Path,
           data_dir: str | None, int8: bool = False) -> dict:
    """Writes and verifies every artifact in ``scratch`` (a private scratch folder); returns the card."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training.export import card as cards
    from training.export import onnx_model, parity, saved_model
    from training.train import predict_probabilities

    try:
        model = keras.models.load_model(run_dir / "model.keras")
    except Exception as error:
        raise ExportError(f"cannot load {run_dir}/model.keras: {error}") from error
    _check_model(model, labels, run_dir)
    class_ids, class_names = [str(v) for v in labels["class_ids"]], [str(v) for v in labels["class_names"]]
    size = tuple(int(v) for v in model.inputs[0].shape[1:3])
    log.info("exporting %s (%s) as %s", run_dir, run_config["task"]["name"], name)

    sources = scratch / ".label-sources"
    module = saved_model.ServingModule(model, class_ids, class_names, saved_model.write_assets(sources, class_ids, class_names))
    saved_model.save(module, scratch)
    shutil.rmtree(sources)
    preprocessing = {"decode": cards.DECODE_SEMANTICS, "resize": cards.RESIZE_SEMANTICS,
                     "normalization": cards.normalization(model), "input": "raw RGB pixels 0-255, float32, NHWC"}
    onnx_model.convert(module, scratch / "model.onnx", {
        "model_name": name, "task": run_config["task"]["name"], "labels": class_ids, "names": class_names,
        "input_size": list(size), "preprocessing": preprocessing,
    })
    write_json(scratch / "labels.json", {"class_ids": class_ids, "class_names": class_names})

    # Verify the written artifacts, not the in-memory objects.
    images, source = _sample_images(run_config, size, data_dir)
    samples = parity.samples_from(images, size, source or "")
    pixels = samples.pixels.astype(np.float32)
    keras_probabilities = predict_probabilities(model, pixels)
    session = onnx_model.session(scratch / "model.onnx")
    onnx_result = parity.check_onnx_against_keras(keras_probabilities, onnx_model.run(session, pixels))
    loaded = tf.saved_model.load(str(scratch))
    served = loaded.signatures["serving_default"](pixels=tf.constant(pixels))[onnx_model.OUTPUT_NAME].numpy()
    saved_difference = float(np.abs(served - keras_probabilities).max())
    if saved_difference > parity.MAX_PROBABILITY_DIFFERENCE:
        raise parity.ParityError(f"the SavedModel's serving_default differs from Keras by {saved_difference:.3g}")
    classify_result = parity.check_classify_against_shared_path(loaded, session, samples)
    log.info("parity: ONNX vs Keras max |diff| %.2g; classify vs shared path: max pixel diff %.0f, %d ties",
             onnx_result["max_abs_difference"], classify_result["max_pixel_difference"], classify_result["top1_ties"])
    card = cards.build(
        name=name, run_config=run_config, labels=labels, metrics=metrics, model=model,
        parity={"inputs": samples.source, "onnx_vs_keras": onnx_result,
                "saved_model_vs_keras": {"max_abs_difference": saved_difference},
                "classify_vs_shared_path": classify_result,
                "limits": {"max_abs_difference": parity.MAX_PROBABILITY_DIFFERENCE, "tie_margin": parity.TIE_MARGIN}},
        onnx_info={"file": "model.onnx", "opset": onnx_model.OPSET, "input": onnx_model.INPUT_NAME,
                   "output": onnx_model.OUTPUT_NAME, "batch": "dynamic"},
    )
    card["preprocessing"] = preprocessing
    if int8:
        card["int8"] = _quantize(run_config, size, data_dir, scratch)
        log.info("int8: accuracy drop %.2f points, speed-up %s", card["int8"]["accuracy_drop_points"], card["int8"]["speedup"])
    return card


def _quantize(run_config: dict, size: tuple[int, int], data_dir: str | None, scratch: Path) -> dict:
    from training.data import Limits, load_dataset
    from training.export import quantize

    task = run_config["task"]
    try:
        dataset = load_dataset(task["dataset"], data_dir or run_config.get("data_dir"), size,
                               Limits(quantize.CALIBRATION_IMAGES, task.get("max_validation_images")))
    except Exception as error:
        raise ExportError(f"--int8 calibrates and measures on the run's dataset, which is not at hand ({error}); "
                          "pass --data-dir") from error
    quantize.quantize(scratch / "model.onnx", scratch / quantize.INT8_FILE, dataset.train.images)
    return quantize.measure(scratch / "model.onnx", scratch / quantize.INT8_FILE,
                            dataset.validation.images, dataset.validation.labels)


def _publish(name: str, folder: Path, scratch: Path, card: dict, store: bool) -> ExportResult:
    """Copies the verified export next to its versions, then saves it to the store and renames it into place."""
    from training.export import card as cards
    from training.export import store as stores

    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
    try:
        copy_tree(scratch, staging)
        _crash_point("staged")
        with open(folder / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = existing_versions(folder) + (stores.versions(name) if store else [])
            version = max(known, default=0) + 1
            card = cards.finish(card, version, staging)  # Hashes of the copies: the copy is checked too.
            write_json(staging / cards.CARD_FILE, card)
            staging.chmod(0o755)  # mkdtemp's 0700 would hide the version from a server running as another user.
            tag = stores.save(name, version, staging, card) if store else None
            _crash_point("stored")
            try:
                os.rename(staging, folder / str(version))
            except BaseException:
                if tag:
                    stores.delete(tag)
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s version %d to %s%s", name, version, folder / str(version), f" and the store as {tag}" if tag else "")
    return ExportResult(name, version, folder / str(version), tag, card)
