"""The int8 ONNX variant: static QDQ quantization, calibrated on training images, chosen by measurement.

ONNX Runtime's dynamic int8 quantization measured 5-16x slower than float for these CNNs on our
CPU; static QDQ measured 2-3x faster, so that is the variant built here. The export tries a small
fixed set of configurations (`CONFIGURATIONS`: per-channel or per-tensor weights, the calibration
method and its number of images, signed or unsigned activations), measures each on the run's own
validation images against the float model (top-1, agreement, latency at batch 1 and 32), and keeps
the fastest at batch 1 (the highest speed-up over float; within 5% of it, the most accurate) whose
top-1 drop is within `MAX_ACCURACY_DROP_POINTS`. The card records
every configuration tried with what it measured; when none is within the limit, the card says the
variant is unusable and why, no variant file is kept, and nothing serves one.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

INT8_FILE = "model.int8.onnx"
# The most top-1 a served int8 variant may lose against the float model, in points.
MAX_ACCURACY_DROP_POINTS = 0.3


@dataclasses.dataclass(frozen=True)
class Configuration:
    name: str
    per_channel: bool = True
    calibration_images: int = 256
    method: str = "MinMax"  # onnxruntime.quantization.CalibrationMethod: MinMax, Percentile or Entropy
    activations: str = "int8"  # "int8" (S8S8) or "uint8" (U8S8); weights are int8 in both

    def describe(self) -> str:
        weights = "per-channel" if self.per_channel else "per-tensor"
        calibration = f"{self.method} calibration on {self.calibration_images} training images"
        return f"static QDQ, {weights} int8 weights, {self.activations} activations, {calibration}"


CONFIGURATIONS = (
    Configuration("per-channel-minmax-256"),
    Configuration("per-tensor-minmax-256", per_channel=False),
    Configuration("per-channel-minmax-1024", calibration_images=1024),
    Configuration("per-channel-percentile-1024", calibration_images=1024, method="Percentile"),
    Configuration("per-channel-entropy-1024", calibration_images=1024, method="Entropy"),
    Configuration("per-channel-u8s8-256", activations="uint8"),
)
CALIBRATION_IMAGES = max(configuration.calibration_images for configuration in CONFIGURATIONS)


CALIBRATION_BATCH = 32


def calibration_count(available: int, configuration: Configuration) -> int:
    """The images a configuration calibrates on: whole batches only (ONNX Runtime's histogram
    calibrators, Percentile and Entropy, fail on a short last batch), or all when under one batch."""
    wanted = min(available, configuration.calibration_images)
    return wanted if wanted < CALIBRATION_BATCH else wanted // CALIBRATION_BATCH * CALIBRATION_BATCH


def quantize(float_path: Path, int8_path: Path, calibration: np.ndarray, configuration: Configuration = CONFIGURATIONS[0]) -> None:
    import onnx
    from onnxruntime import quantization

    from training.interface.contract import INPUT_NAME

    images = calibration[: calibration_count(len(calibration), configuration)].astype(np.float32)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT_NAME: images[i : i + CALIBRATION_BATCH]} for i in range(0, len(images), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self.batches, None)

    activations = quantization.QuantType.QUInt8 if configuration.activations == "uint8" else quantization.QuantType.QInt8
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quantization.shape_inference.quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        # The softmax stays float: quantizing its output made rows sum to 0.97 (no longer
        # probabilities, which the service refuses), for no speed.
        softmax = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Softmax"]
        quantization.quantize_static(
            str(prepared),
            str(int8_path),
            Reader(),
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=configuration.per_channel,
            activation_type=activations,
            weight_type=quantization.QuantType.QInt8,
            calibrate_method=getattr(quantization.CalibrationMethod, configuration.method),
            nodes_to_exclude=softmax,
        )
    # Keep the float model's contract (labels, input size, preprocessing) in the variant's metadata.
    source, target = onnx.load(str(float_path)), onnx.load(str(int8_path))
    del target.metadata_props[:]
    target.metadata_props.extend(source.metadata_props)
    entry = target.metadata_props.add()
    entry.key, entry.value = "imgclf.quantization", configuration.describe()
    onnx.save(target, str(int8_path))


def _median_ms(session, pixels: np.ndarray, repeats: int) -> float:
    from training.interface.contract import INPUT_NAME

    session.run(None, {INPUT_NAME: pixels})  # Warm-up.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {INPUT_NAME: pixels})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# Latency is timed at one intra-op thread, as the service runs batched model calls (IMGCLF_ONNX_THREADS).
LATENCY_THREADS = 1


def measure(float_path: Path, int8_path: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of both models on ``images``, their top-1 agreement and latencies at one thread
    (each batch size timed on both models in turn, so that the two share the machine's moment)."""
    from training.export.onnx_model import run, session

    float_session, int8_session = session(float_path, LATENCY_THREADS), session(int8_path, LATENCY_THREADS)
    pixels = images.astype(np.float32)
    float_top1 = run(float_session, pixels).argmax(axis=1)
    int8_probabilities = run(int8_session, pixels)
    int8_top1 = int8_probabilities.argmax(axis=1)
    # The service serves only answers that are probabilities (rows summing to 1 within 1e-3).
    sum_error = float(np.abs(int8_probabilities.sum(axis=1) - 1).max()) if len(pixels) else 0.0
    float_accuracy, int8_accuracy = float((float_top1 == labels).mean()), float((int8_top1 == labels).mean())
    drop = round((float_accuracy - int8_accuracy) * 100, 3)
    latency = {}
    for batch in (1, 32):
        sample = pixels[np.arange(batch) % len(pixels)]
        repeats = 50 if batch == 1 else 10
        latency[batch] = (_median_ms(float_session, sample, repeats), _median_ms(int8_session, sample, repeats))
    return {
        "validation_images": int(len(labels)),
        "float_top1": float_accuracy,
        "int8_top1": int8_accuracy,
        "accuracy_drop_points": drop,
        "top1_agreement": float((float_top1 == int8_top1).mean()),
        "latency_ms": {f"batch{batch}": {"float": round(f, 3), "int8": round(i, 3)} for batch, (f, i) in latency.items()},
        "latency_threads": LATENCY_THREADS,
        "probability_sum_error": round(sum_error, 6),
        "speedup": {f"batch{batch}": round(f / i, 2) for batch, (f, i) in latency.items()},
        "usable": bool(drop <= MAX_ACCURACY_DROP_POINTS and sum_error <= 1e-3),
    }


def build(float_path: Path, folder: Path, calibration: np.ndarray, images: np.ndarray, labels: np.ndarray, configurations=CONFIGURATIONS) -> dict:
    """Tries every configuration; keeps the fastest usable one as ``folder/INT8_FILE``; returns the
    card's ``int8`` section (the choice, or why there is none, and every configuration's figures)."""
    tried, files = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for configuration in configurations:
            candidate = Path(scratch) / f"{configuration.name}.onnx"
            quantize(float_path, candidate, calibration, configuration)
            figures = {
                "configuration": configuration.name,
                "method": configuration.describe(),
                "calibration_images": calibration_count(len(calibration), configuration),
                **measure(float_path, candidate, images, labels),
            }
            tried.append(figures)
            files[configuration.name] = candidate
        best = choose(tried)
        if best is not None:
            files[best["configuration"]].replace(folder / INT8_FILE)
    section = {"max_accuracy_drop_points": MAX_ACCURACY_DROP_POINTS, "configurations": tried}
    if best is None:
        drops = ", ".join(f"{figures['configuration']} {figures['accuracy_drop_points']:+.2f}" for figures in tried)
        return {
            **section,
            "usable": False,
            "reason": f"every configuration lost more than {MAX_ACCURACY_DROP_POINTS} points of top-1 ({drops}): the float model serves",
        }
    return {"file": INT8_FILE, **best, **section}


# Speed-ups this close to the best are the same speed on this machine (repeated measurements of one
# model swing by a few percent): among them the most accurate wins.
SPEED_TIE = 0.05


def choose(tried: list[dict]) -> dict | None:
    """The fastest usable configuration (the highest speed-up at batch 1, a ratio measured in one
    moment, so fair on a noisy machine), the smallest drop among those within `SPEED_TIE` of it."""
    usable = [figures for figures in tried if figures["usable"]]
    if not usable:
        return None
    fastest = max(figures["speedup"]["batch1"] for figures in usable)
    ties = [figures for figures in usable if figures["speedup"]["batch1"] >= fastest * (1 - SPEED_TIE)]
    return min(ties, key=lambda figures: (figures["accuracy_drop_points"], -figures["speedup"]["batch1"]))
