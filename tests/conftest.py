"""Shared fixtures: the real-data folder, tiny datasets in the official formats, and the session's
smoke-trained and exported models."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import training  # noqa: F401  Before any test imports TensorFlow: it sets TensorFlow's oneDNN default.

ROOT = Path(__file__).resolve().parents[1]
DATA_VARIABLE = "IMGCLF_DATA_DIR"


# For developers iterating on a few tests: a folder that holds an earlier session's smoke runs
# (``<task>/``), their exports (``exports/``) and store (``bentoml/``), reused instead of training.
SMOKE_CACHE = os.environ.get("IMGCLF_TEST_SMOKE_CACHE")


@pytest.fixture(scope="session", autouse=True)
def private_stores(tmp_path_factory) -> dict[str, Path]:
    """Every test (and every subprocess it starts) exports into session folders, never ~/bentoml."""
    paths = {"BENTOML_HOME": tmp_path_factory.mktemp("bentoml"), "IMGCLF_EXPORT_ROOT": tmp_path_factory.mktemp("exports")}
    if SMOKE_CACHE:
        paths = {"BENTOML_HOME": Path(SMOKE_CACHE) / "bentoml", "IMGCLF_EXPORT_ROOT": Path(SMOKE_CACHE) / "exports"}
    saved = {key: os.environ.get(key) for key in paths}
    os.environ.update({key: str(value) for key, value in paths.items()})
    yield paths
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _data_dir() -> Path | None:
    value = os.environ.get(DATA_VARIABLE)
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder of real datasets (`../shared/data` in CI), from $IMGCLF_DATA_DIR."""
    if _data_dir() is None:
        pytest.skip(f"${DATA_VARIABLE} is not set to a folder of real datasets")
    return _data_dir()


# Fixtures that train, export or start a server: a test using any of them is `slow`.
PROCESS_FIXTURES = {"smoke_runs", "demo_run", "demo_export", "server"}


def pytest_collection_modifyitems(items) -> None:
    """The markers follow what a test really uses: `data` exactly when it reads $IMGCLF_DATA_DIR
    (the `real_data_dir` fixture, directly or through another fixture), `slow` when it trains or
    starts processes through a fixture (tests that start processes themselves say so in their module)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "real_data_dir" in fixtures:
            item.add_marker(pytest.mark.data)
        if fixtures & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.slow)


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    mode = "L" if array.ndim == 2 else "RGB"
    Image.fromarray(array, mode).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def pattern(rng: np.random.Generator, label: int, size: int = 64, grey: bool = False) -> np.ndarray:
    """A learnable image: a class-dependent colour and stripe pattern with noise."""
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x * (label + 1) * 7) % 256, (y * (label + 2) * 5) % 256, np.full_like(x, label * 40 % 256)], axis=2)
    image = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    return image.mean(axis=2).astype(np.uint8) if grey else image


WNIDS = ("n01443537", "n01629819", "n01641577")
WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander", "n01641577": "bullfrog"}


def write_tiny_imagenet(root: Path, per_class: int = 4, val_per_class: int = 2, extras: bool = True) -> Path:
    """Writes a 3-class Tiny ImageNet in the official layout under ``root/tiny-imagenet-200``.

    With ``extras``: one grayscale image, one corrupt JPEG, a val image listed nowhere, an
    annotation whose file is missing, and a wnid with no images.
    """
    rng = np.random.default_rng(0)
    top = root / "tiny-imagenet-200"
    wnids = WNIDS + (("n09999999",) if extras else ())
    (top / "train").mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (top / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in {**WORDS, "n09999999": "nothing"}.items()))
    for label, wnid in enumerate(WNIDS):
        images = top / "train" / wnid / "images"
        images.mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for index in range(per_class):
            grey = extras and label == 0 and index == 0
            (images / f"{wnid}_{index}.JPEG").write_bytes(jpeg_bytes(pattern(rng, label, grey=grey)))
    if extras:
        good = (top / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_0.JPEG").read_bytes()
        (top / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_corrupt.JPEG").write_bytes(good[: len(good) // 3])
    (top / "val" / "images").mkdir(parents=True)
    lines = []
    for label, wnid in enumerate(WNIDS):
        for index in range(val_per_class):
            name = f"val_{label * val_per_class + index}.JPEG"
            (top / "val" / "images" / name).write_bytes(jpeg_bytes(pattern(rng, label)))
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    if extras:
        (top / "val" / "images" / "val_unlisted.JPEG").write_bytes(jpeg_bytes(pattern(rng, 0)))
        lines.append(f"val_missing.JPEG\t{WNIDS[0]}\t0\t0\t63\t63")
    (top / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return top


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, path.relative_to(folder.parent).as_posix())
    return archive


CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar_batch(rng: np.random.Generator, count: int, numpy1: bool = False) -> bytes:
    labels = [int(i % 10) for i in range(count)]
    images = np.stack([pattern(rng, label, size=32) for label in labels])
    data = images.transpose(0, 3, 1, 2).reshape(count, 3072)
    payload = pickle.dumps(
        {b"batch_label": b"test", b"labels": labels, b"data": data, b"filenames": [f"img_{i}.png".encode() for i in range(count)]}, protocol=2
    )
    if numpy1:
        payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy" in payload
    return payload


def write_cifar_archive(path: Path, per_batch: int = 20, test_count: int = 20, numpy1: bool = False) -> Path:
    """Writes a small ``cifar-10-python.tar.gz`` in the official layout."""
    rng = np.random.default_rng(1)
    members = {f"data_batch_{i}": cifar_batch(rng, per_batch, numpy1) for i in range(1, 6)}
    members["test_batch"] = cifar_batch(rng, test_count, numpy1)
    members["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}, protocol=2)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


# Real training runs through the CLI, in subprocesses, on real data (shared by every test folder).
SMOKE_ORDER = ("demo", "task1", "task2", "task3", "task4", "task5", "task6")
# Two lanes run side by side (most of a smoke run is single-threaded Python: imports, data
# loading, conversion); task6 fine-tunes task5's run, so they share a lane. Measured one at a
# time (s): demo 21, task1 28, task2 28, task3 33, task4 72, task5 72, task6 96.
SMOKE_LANES = (("task5", "task6"), ("demo", "task1", "task4", "task3", "task2"))


def run_cli(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)


def _start_smoke(task: str, run_dir: Path, data_dir: Path, runs: dict, logs: Path) -> subprocess.Popen:
    extra = ["--init-run", str(runs["task5"])] if task == "task6" else []
    log = open(logs / f"{task}.log", "w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            task,
            "--preset",
            "smoke",
            "--data-dir",
            str(data_dir),
            "--run-dir",
            str(run_dir),
            "--quiet",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, real_data_dir) -> dict[str, Path]:
    """Every task trained (and exported) with --preset smoke on the real data subsets."""
    if SMOKE_CACHE:
        return {task: Path(SMOKE_CACHE) / task for task in SMOKE_ORDER}
    root = tmp_path_factory.mktemp("smoke")
    runs: dict[str, Path] = {}
    lanes = [list(lane) for lane in SMOKE_LANES]
    running: dict[int, tuple[str, subprocess.Popen, float]] = {}
    deadline = time.monotonic() + 1500
    try:
        while any(lanes) or running:
            for index, lane in enumerate(lanes):
                if index not in running and lane:
                    task = lane.pop(0)
                    running[index] = (task, _start_smoke(task, root / task, real_data_dir, runs, root), time.monotonic())
            for index, (task, process, _) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[index]
                output = (root / f"{task}.log").read_text()
                assert process.returncode == 0, f"{task} smoke training failed:\n{output[-6000:]}"
                runs[task] = root / task
            assert time.monotonic() < deadline, f"smoke training did not finish: {sorted(t for t, _, _ in running.values())}"
            time.sleep(0.2)
    finally:
        for _, process, _ in running.values():
            process.kill()
    return runs


@pytest.fixture(scope="session")
def demo_run(request, tmp_path_factory) -> Path:
    """The demo task trained with --preset smoke. It needs no dataset (scikit-learn's bundled
    digits), so it is trained alone when there is no data folder; with one, it is the smoke runs'."""
    if SMOKE_CACHE:
        return Path(SMOKE_CACHE) / "demo"
    if _data_dir() is not None:
        return request.getfixturevalue("smoke_runs")["demo"]
    run = tmp_path_factory.mktemp("demo") / "run"
    result = run_cli("train", "demo", "--preset", "smoke", "--run-dir", str(run), "--quiet")
    assert result.returncode == 0, f"demo smoke training failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return run


@pytest.fixture(scope="session")
def demo_export(demo_run, tmp_path_factory) -> dict[str, Path]:
    """A private export root and BentoML store holding version 1 of the demo model (copy before changing)."""
    base = tmp_path_factory.mktemp("demo-export")
    result = run_cli("export", str(demo_run), "--export-root", str(base / "exports"), env={"BENTOML_HOME": str(base / "store")})
    assert result.returncode == 0, result.stderr[-3000:]
    return {"exports": base / "exports", "store": base / "store", "run": demo_run}


@pytest.fixture(scope="session")
def server(smoke_runs, tmp_path_factory):
    """The service over the session's BentoML store, serving the demo and task1 smoke models, with
    feedback on (into ``server.feedback_root``)."""
    from tests.live_server import LIMITS, SERVED, start_server, stop_server

    folder = tmp_path_factory.mktemp("server")
    feedback_root = folder / "feedback"
    running = start_server(folder, {"IMGCLF_MODELS": ",".join(SERVED), "IMGCLF_FEEDBACK_ROOT": str(feedback_root), **LIMITS})
    running.feedback_root = feedback_root
    yield running
    stop_server(running)
