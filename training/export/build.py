"""Building an export: every artifact written into a private scratch folder, then verified there.

`build` loads the run's Keras model, writes the TF-Serving SavedModel and the ONNX model, checks
both against Keras on real images (and the ``classify`` signature's in-graph decode + resize
against `training.interface.preprocessing`), optionally adds the int8 ONNX variant, and returns the model
card. Nothing outside the scratch folder is touched: publishing is `training.export.publish`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from training.export.naming import ExportError
from training.run_dir import read_json, write_json

log = logging.getLogger("training")


def read_run(run_dir: Path) -> tuple[dict, dict, dict]:
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
        raise ExportError(
            f"{run_dir}/model.keras has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "an image classifier has one image input and one probabilities output"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or not all(isinstance(v, int) and v > 0 for v in shape[1:3]):
        raise ExportError(f"{run_dir}/model.keras takes input of shape {shape}, not an RGB image [batch, height, width, 3] of fixed size")
    classes = len(labels["class_ids"])
    if tuple(model.outputs[0].shape) != (None, classes):
        raise ExportError(f"{run_dir}/model.keras outputs shape {tuple(model.outputs[0].shape)}, but labels.json lists {classes} classes")


def _sample_images(run_config: dict, size: tuple[int, int], data_dir: str | None):
    """Up to 64 real images at the input size from the run's dataset, or None if it is not at hand."""
    import numpy as np

    from training.data import Limits, load_dataset
    from training.export.parity import SAMPLE_COUNT

    task = run_config["task"]
    data_dir = data_dir or run_config.get("data_dir")
    try:
        dataset = load_dataset(task["dataset"], data_dir, size, Limits(SAMPLE_COUNT, SAMPLE_COUNT))
    except Exception as error:  # Parity then runs on random images; the card says so.
        log.warning("parity check: dataset %s not at hand (%s); using random images", task["dataset"], error)
        return None, None
    images = np.concatenate([dataset.validation.images, dataset.train.images])[:SAMPLE_COUNT]
    return images, f"{task['dataset']} validation/training images"


def build(run_dir: Path, run_config: dict, labels: dict, metrics: dict, name: str, scratch: Path, data_dir: str | None, int8: bool = False) -> dict:
    """Writes and verifies every artifact in ``scratch`` (a private scratch folder); returns the card."""
    import keras
    import numpy as np
    import tensorflow as tf

    from training.evaluation import predict_probabilities
    from training.export import card as cards
    from training.export import onnx_model, parity, saved_model

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
    preprocessing = {
        "decode": cards.DECODE_SEMANTICS,
        "resize": cards.RESIZE_SEMANTICS,
        "normalization": cards.normalization(model),
        "input": "raw RGB pixels 0-255, float32, NHWC",
    }
    onnx_model.convert(
        module,
        scratch / "model.onnx",
        {
            "model_name": name,
            "task": run_config["task"]["name"],
            "labels": class_ids,
            "names": class_names,
            "input_size": list(size),
            "preprocessing": preprocessing,
        },
    )
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
    log.info(
        "parity: ONNX vs Keras max |diff| %.2g; classify vs shared path: max pixel diff %.0f, %d ties",
        onnx_result["max_abs_difference"],
        classify_result["max_pixel_difference"],
        classify_result["top1_ties"],
    )
    card = cards.build(
        name=name,
        run_config=run_config,
        labels=labels,
        metrics=metrics,
        model=model,
        parity={
            "inputs": samples.source,
            "onnx_vs_keras": onnx_result,
            "saved_model_vs_keras": {"max_abs_difference": saved_difference},
            "classify_vs_shared_path": classify_result,
            "limits": {
                "max_abs_difference": parity.MAX_PROBABILITY_DIFFERENCE,
                "tie_margin": parity.TIE_MARGIN,
                "max_pixel_difference": parity.MAX_PIXEL_DIFFERENCE,
            },
        },
        signature_defs=saved_model.signature_defs(scratch),
        onnx_info={
            "file": "model.onnx",
            "opset": onnx_model.OPSET,
            "input": onnx_model.INPUT_NAME,
            "output": onnx_model.OUTPUT_NAME,
            "batch": "dynamic",
        },
    )
    card["preprocessing"] = preprocessing
    card["reference"] = _reference(run_config, size, data_dir, session)
    if int8:
        card["int8"] = _quantize(run_config, size, data_dir, scratch)
        chosen = card["int8"]
        if chosen["usable"]:
            log.info("int8: %s, accuracy drop %.2f points, speed-up %s", chosen["configuration"], chosen["accuracy_drop_points"], chosen["speedup"])
        else:
            log.warning("int8: %s", chosen["reason"])
    return card


def _reference(run_config: dict, size: tuple[int, int], data_dir: str | None, session) -> dict | None:
    """What the server's drift gauge compares with: the exported ONNX model's predictions on the
    run's validation images (`training.interface.monitoring`); None when the data is not at hand."""
    import numpy as np

    from training.data import Limits, load_dataset
    from training.export import onnx_model
    from training.export.parity import SAMPLE_COUNT
    from training.interface import monitoring

    task = run_config["task"]
    try:
        dataset = load_dataset(task["dataset"], data_dir or run_config.get("data_dir"), size, Limits(SAMPLE_COUNT, task.get("max_validation_images")))
    except Exception as error:
        log.warning("monitoring reference: dataset %s not at hand (%s); the server will not report drift for this model", task["dataset"], error)
        return None
    probabilities = onnx_model.run(session, dataset.validation.images.astype(np.float32))
    log.info("monitoring reference: %d validation images' predictions", len(probabilities))
    return monitoring.reference(probabilities, f"{task['dataset']} validation images")


def _quantize(run_config: dict, size: tuple[int, int], data_dir: str | None, scratch: Path) -> dict:
    from training.data import Limits, load_dataset
    from training.export import quantize

    task = run_config["task"]
    try:
        dataset = load_dataset(
            task["dataset"], data_dir or run_config.get("data_dir"), size, Limits(quantize.CALIBRATION_IMAGES, task.get("max_validation_images"))
        )
    except Exception as error:
        raise ExportError(f"--int8 calibrates and measures on the run's dataset, which is not at hand ({error}); pass --data-dir") from error
    return quantize.build(scratch / "model.onnx", scratch, dataset.train.images, dataset.validation.images, dataset.validation.labels)
