"""Every task's smoke model, exported at the end of its training run: TF Serving layout, both
signatures, ONNX parity, the model card and the BentoML store (the `smoke_runs` fixture trains
and exports them through the CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import SMOKE_ORDER, run_cli
from tests.integration.export_check import check
from training import tasks
from training.data import Limits, load_dataset
from training.export.parity import encode_variants
from training.interface.preprocessing import load_image

pytestmark = pytest.mark.slow


def exported(task: str) -> Path:
    """The first (and, in this session, only) exported version of ``task``'s smoke model."""
    return Path(os.environ["IMGCLF_EXPORT_ROOT"]) / tasks.TASKS[task].export_name / "1"


def sample_images(task: str, data_dir: Path, count: int = 8) -> np.ndarray:
    config = tasks.resolve(task, "smoke")
    return load_dataset(config.dataset, data_dir, config.input_size, Limits(count, count)).validation.images[:count]


def bentoml_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bentoml", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("task", SMOKE_ORDER)
def test_saved_model_has_tf_serving_layout_and_both_signatures(task, smoke_runs, real_data_dir):
    import tensorflow as tf

    version = exported(task)
    for name in (
        "saved_model.pb",
        "variables/variables.index",
        "assets/labels.txt",
        "assets/names.txt",
        "model.onnx",
        "labels.json",
        "model_card.json",
    ):
        assert (version / name).is_file(), f"{task}: {name} missing"
    labels = json.loads((smoke_runs[task] / "labels.json").read_text())
    assert (version / "assets" / "labels.txt").read_text().splitlines() == labels["class_ids"]
    assert (version / "assets" / "names.txt").read_text().splitlines() == labels["class_names"]

    loaded = tf.saved_model.load(str(version))
    assert set(loaded.signatures) == {"serving_default", "classify"}
    height, width = tasks.resolve(task, "smoke").input_size
    serving = loaded.signatures["serving_default"]
    (pixels_spec,) = serving.structured_input_signature[1].values()
    assert pixels_spec.dtype == tf.float32 and pixels_spec.shape.as_list() == [None, height, width, 3]
    classify = loaded.signatures["classify"]
    (images_spec,) = classify.structured_input_signature[1].values()
    assert images_spec.dtype == tf.string and images_spec.shape.as_list() == [None]

    # classify takes encoded bytes of any size and mode and answers with labels from the asset.
    images = sample_images(task, real_data_dir, 6)
    encoded, _ = encode_variants(images)
    result = {key: value.numpy() for key, value in classify(images=tf.constant(encoded)).items()}
    k = min(5, len(labels["class_ids"]))
    assert result["class_index"].shape == result["score"].shape == (len(encoded), k)
    assert (np.diff(result["score"], axis=1) <= 0).all()
    for row in range(len(encoded)):
        assert [v.decode() for v in result["label"][row]] == [labels["class_ids"][i] for i in result["class_index"][row]]
        assert [v.decode() for v in result["name"][row]] == [labels["class_names"][i] for i in result["class_index"][row]]
    # ... and the same top-1 as serving_default on the project's own decode + resize.
    shared = np.stack([load_image(data, (height, width)) for data in encoded]).astype(np.float32)
    probabilities = serving(pixels=tf.constant(shared))["probabilities"].numpy()
    np.testing.assert_allclose(result["score"][:, 0], probabilities.max(axis=1), atol=0.02)


@pytest.mark.parametrize("task", SMOKE_ORDER)
def test_onnx_model_loads_and_matches_keras(task, smoke_runs, real_data_dir):
    import keras
    import onnxruntime

    version = exported(task)
    session = onnxruntime.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
    height, width = tasks.resolve(task, "smoke").input_size
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    assert (inputs.name, inputs.type, inputs.shape) == ("pixels", "tensor(float)", ["batch", height, width, 3])
    labels = json.loads((smoke_runs[task] / "labels.json").read_text())
    assert (outputs.name, outputs.shape) == ("probabilities", ["batch", len(labels["class_ids"])])
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["imgclf.labels"]) == labels["class_ids"]
    assert json.loads(metadata["imgclf.input_size"]) == [height, width]
    assert "bilinear" in json.loads(metadata["imgclf.preprocessing"])["resize"]

    pixels = sample_images(task, real_data_dir).astype(np.float32)
    model = keras.models.load_model(smoke_runs[task] / "model.keras")
    expected = np.asarray(model.predict_on_batch(pixels))
    for batch in (pixels[:1], pixels):  # Dynamic batch.
        (got,) = session.run(None, {"pixels": batch})
        assert np.abs(got - expected[: len(batch)]).max() <= 1e-4


@pytest.mark.parametrize("task", SMOKE_ORDER)
def test_model_card_records_the_run_parity_and_checksums(task, smoke_runs):
    version = exported(task)
    card = json.loads((version / "model_card.json").read_text())
    metrics = json.loads((smoke_runs[task] / "metrics.json").read_text())
    config = tasks.resolve(task, "smoke")
    assert card["model_name"] == config.export_name and card["version"] == 1
    assert card["task"]["name"] == task and card["dataset"]["source"] == config.dataset
    assert card["input_size"] == list(config.input_size) and card["labels"]["count"] == len(metrics["per_class_accuracy"])
    assert card["metrics"]["val_top1"] == metrics["val_top1"]
    assert card["training"]["parameters"] == metrics["parameters"] and card["training"]["seconds"] == metrics["train_seconds"]
    assert "antialiased" in card["preprocessing"]["resize"] and "inside the model" in card["preprocessing"]["normalization"]
    assert {"tensorflow", "keras", "tf2onnx", "onnxruntime"} <= set(card["framework_versions"])
    # The drift gauge's reference: the exported model's answers on every validation image of the run.
    reference = card["reference"]
    assert reference["images"] == metrics["validation_images"] == sum(reference["predicted_class_counts"]) == sum(reference["confidence_counts"])
    assert len(reference["predicted_class_counts"]) == card["labels"]["count"]
    parity = card["parity"]
    assert parity["onnx_vs_keras"]["inputs"] >= 64 and parity["onnx_vs_keras"]["max_abs_difference"] <= 1e-4
    assert parity["onnx_vs_keras"]["top1_disagreements"] == 0
    assert parity["classify_vs_shared_path"]["inputs"] >= 64 and parity["classify_vs_shared_path"]["top1_disagreements"] == 0
    assert parity["classify_vs_shared_path"]["max_pixel_difference"] <= 2
    assert "random" not in parity["inputs"], "the real dataset was at hand: parity must use it"
    # The SavedModel's signatures as written, which the service hands to TF Serving clients.
    signatures = card["signature_defs"]
    assert set(signatures) == {"classify", "serving_default"}
    pixels = signatures["serving_default"]["inputs"]["pixels"]
    assert pixels["dtype"] == "DT_FLOAT" and [d["size"] for d in pixels["tensor_shape"]["dim"]] == ["-1", *map(str, config.input_size), "3"]
    assert set(signatures["classify"]["outputs"]) == {"class_index", "label", "name", "score"}
    assert all(info["name"].endswith((":0", ":1", ":2", ":3")) for side in signatures.values() for info in side["outputs"].values())
    files = {str(p.relative_to(version)) for p in version.rglob("*") if p.is_file()} - {"model_card.json"}
    assert set(card["artifacts"]) == files
    for name, digest in card["artifacts"].items():
        assert hashlib.sha256((version / name).read_bytes()).hexdigest() == digest, name


def test_bentoml_store_lists_every_model_with_labels_and_card(smoke_runs):
    import bentoml

    listed = bentoml_cli("models", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    tags = {entry["tag"] for entry in json.loads(listed.stdout)}
    for task in SMOKE_ORDER:
        tag = f"{tasks.TASKS[task].export_name}:1"
        assert tag in tags
        model = bentoml.models.get(tag)
        card = json.loads((exported(task) / "model_card.json").read_text())
        assert model.info.metadata == card
        assert model.info.labels["task"] == task
        stored = Path(model.path)
        assert (stored / "model.onnx").read_bytes() == (exported(task) / "model.onnx").read_bytes()
        assert (stored / "saved_model.pb").is_file() and (stored / "assets" / "labels.txt").is_file()


def test_bentoml_models_export_and_import_round_trip(smoke_runs, tmp_path):
    archive = tmp_path / "demo.bentomodel"
    tag = f"{tasks.TASKS['demo'].export_name}:1"
    result = bentoml_cli("models", "export", tag, str(archive))
    assert result.returncode == 0, result.stderr
    other = {**os.environ, "BENTOML_HOME": str(tmp_path / "other-store")}
    imported = subprocess.run(
        [sys.executable, "-m", "bentoml", "models", "import", str(archive)], env=other, capture_output=True, text=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "bentoml", "models", "get", tag, "-o", "json"], env=other, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    card = json.loads((exported("demo") / "model_card.json").read_text())
    assert info["metadata"]["artifacts"] == card["artifacts"]
    copy = tmp_path / "other-store" / "models" / "digits-cnn" / "1"
    for name, digest in card["artifacts"].items():
        assert hashlib.sha256((copy / name).read_bytes()).hexdigest() == digest, name


def test_reexport_adds_a_version_and_keeps_the_old_one(demo_export, tmp_path):
    import onnxruntime

    from tests.integration.test_export_failures import copy_previous, store_versions

    root, store = copy_previous(demo_export, tmp_path)
    before = check(root / "digits-cnn")
    result = run_cli("export", str(demo_export["run"]), "--export-root", str(root), env={"BENTOML_HOME": str(store)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exported digits-cnn version 2" in result.stdout
    # The conversion libraries' notices go to the run's export.log, not the user's terminal.
    assert "Instructions for updating" not in result.stderr and "WARNING:tensorflow" not in result.stderr, result.stderr[-2000:]
    assert "convert_variables_to_constants" in (demo_export["run"] / "export.log").read_text()
    assert before["complete"] == [1] and check(root / "digits-cnn")["complete"] == [1, 2]
    first = json.loads((root / "digits-cnn" / "1" / "model_card.json").read_text())
    second = json.loads((root / "digits-cnn" / "2" / "model_card.json").read_text())
    assert (first["version"], second["version"]) == (1, 2)
    assert store_versions(store) == ["1", "2"]
    # Same model, same answers (tf2onnx's node names differ between conversions, so the bytes may not).
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    answers = [onnxruntime.InferenceSession(str(root / "digits-cnn" / v / "model.onnx")).run(None, {"pixels": pixels})[0] for v in ("1", "2")]
    np.testing.assert_array_equal(answers[0], answers[1])


def test_int8_configurations_are_measured_and_the_fastest_usable_one_kept(smoke_runs, tmp_path):
    import onnx

    from training.export import quantize
    from training.export.quantize import CONFIGURATIONS, MAX_ACCURACY_DROP_POINTS

    result = run_cli("export", str(smoke_runs["demo"]), "--export-root", str(tmp_path), "--no-store", "--int8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "int8: " in result.stdout
    version = tmp_path / "digits-cnn" / "1"
    card = json.loads((version / "model_card.json").read_text())
    int8 = card["int8"]
    tried = int8["configurations"]
    assert [entry["configuration"] for entry in tried] == [configuration.name for configuration in CONFIGURATIONS]
    validation_images = json.loads((smoke_runs["demo"] / "metrics.json").read_text())["validation_images"]
    for entry in tried:
        assert entry["validation_images"] == validation_images and entry["speedup"]["batch1"] > 0 and entry["speedup"]["batch32"] > 0
        assert entry["usable"] == (entry["accuracy_drop_points"] <= MAX_ACCURACY_DROP_POINTS)
    usable = [entry for entry in tried if entry["usable"]]
    assert int8["usable"] == bool(usable) and (version / "model.int8.onnx").is_file() == bool(usable)
    if not usable:  # The card says why, and there is no variant to serve.
        assert "every configuration lost more than" in int8["reason"] and "model.int8.onnx" not in card["artifacts"]
        return
    assert int8["configuration"] == quantize.choose(tried)["configuration"]
    assert int8["file"] == "model.int8.onnx" and "model.int8.onnx" in card["artifacts"]
    quantized = onnx.load(str(version / "model.int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in quantized.graph.node)
    metadata = {entry.key: entry.value for entry in quantized.metadata_props}
    assert json.loads(metadata["imgclf.labels"]) == json.loads((smoke_runs["demo"] / "labels.json").read_text())["class_ids"]
    assert metadata["imgclf.quantization"] == int8["method"]


class _Altered:
    """A real exported SavedModel with one part changed, as a broken export would have it."""

    def __init__(self, loaded, shift: float = 0.0, wrong_class: bool = False):
        self.loaded, self.shift, self.wrong_class = loaded, shift, wrong_class
        self.signatures = {"classify": self.classify}

    def preprocess(self, batch):
        return self.loaded.preprocess(batch) + self.shift

    def classify(self, images):
        result = dict(self.loaded.signatures["classify"](images=images))
        if self.wrong_class:
            result["class_index"] = result["class_index"][:, ::-1]  # its second class, reported first
        return result


def test_classify_parity_allows_rounding_only_and_refuses_a_wrong_class(demo_export):
    import onnxruntime
    import tensorflow as tf

    from training.export import parity

    version = demo_export["exports"] / "digits-cnn" / "1"
    loaded = tf.saved_model.load(str(version))
    session = onnxruntime.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
    size = tasks.resolve("demo", "smoke").input_size
    digits = load_dataset("digits", None, size, Limits(12, 12)).validation.images[:12]
    samples = parity.samples_from(digits, size, "validation")
    result = parity.check_classify_against_shared_path(loaded, session, samples)
    assert result["top1_disagreements"] == 0 and result["max_pixel_difference"] <= parity.MAX_PIXEL_DIFFERENCE
    assert 0 <= result["rounding_flips"] <= len(samples.encoded)
    # 3 levels on top of the 1-level rounding already there: 3 or 4 apart.
    with pytest.raises(parity.ParityError, match=r"differ by [34] levels on \S+ \d+x\d+ \(limit 1: rounding only\)"):
        parity.check_classify_against_shared_path(_Altered(loaded, shift=3.0), session, samples)
    disagree = r"classify signature and ONNX Runtime on the same pixels disagree on the top-1 class of \d+ of 64 images"
    with pytest.raises(parity.ParityError, match=disagree):
        parity.check_classify_against_shared_path(_Altered(loaded, wrong_class=True), session, samples)
