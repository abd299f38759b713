"""The benchmarks' own arithmetic and tools: the training FLOP count on a model whose count is
known by hand, and the full-set assembly (benchmarks/full_tiny_imagenet.py) on a git repository
laid out as rangeetpan/IMagenet, with its two extra classes and its own validation images."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


def test_training_flops_counts_convolutions_and_dense_layers():
    import keras

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from training_throughput import training_flops

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 outputs x 4 filters x 3*3*3 multiply-adds
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(keras.layers.ReLU()(x))  # 4*4 x 6 x 3*3*4
    x = keras.layers.Dense(10)(keras.layers.Flatten()(x))  # 96 x 10
    first, second, dense = 2 * 64 * 4 * 27, 2 * 16 * 6 * 36, 2 * 96 * 10
    # Forward, weight gradient and input gradient; the first layer needs no input gradient.
    assert training_flops(keras.Model(inputs, x)) == 2 * first + 3 * second + 3 * dense


def _fake_imagenet_repo(tmp_path, reference_zip, classes):
    """A git repository holding tiny-imagenet-200/train/<wnid>/images/*.JPEG for ``classes``
    (real images from the reference zip) and a validation folder that must never be read."""
    repo = tmp_path / "IMagenet"
    with zipfile.ZipFile(reference_zip) as archive:
        image = next(name for name in archive.namelist() if name.endswith(".JPEG") and "/train/" in name)
        data = archive.read(image)
    for wnid in classes:
        folder = repo / "tiny-imagenet-200" / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for index in range(2):
            (folder / f"{wnid}_{index}.JPEG").write_bytes(data)
        (folder.parent / f"{wnid}_boxes.txt").write_text("")
    validation = repo / "tiny-imagenet-200" / "val" / "images"
    validation.mkdir(parents=True)
    (validation / "val_0.JPEG").write_bytes(b"not the reference validation image")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True)
    return repo


def _assemble(repo, reference, out):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "full_tiny_imagenet.py"),
        "--repo",
        str(repo),
        "--reference",
        str(reference),
        "--out",
        str(out),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_full_set_drops_the_extra_classes_and_validates_on_the_reference_images(tmp_path, real_data_dir):
    reference = real_data_dir / "tiny-imagenet-200-subset.zip"
    with zipfile.ZipFile(reference) as archive:
        wnids = archive.read("tiny-imagenet-200/wnids.txt").decode().split()
        validation = [name for name in archive.namelist() if "/val/images/" in name and name.endswith(".JPEG")]
    repo = _fake_imagenet_repo(tmp_path, reference, [*wnids, "n02480855", "n10148035"])
    result = _assemble(repo, real_data_dir, tmp_path / "full")
    assert result.returncode == 0, result.stderr
    root = tmp_path / "full" / "tiny-imagenet-200"
    assert sorted(path.name for path in (root / "train").iterdir()) == sorted(wnids)  # The two extra classes dropped.
    assert len(list((root / "train").glob("*/images/*.JPEG"))) == 2 * len(wnids)
    assert len(list((root / "val" / "images").iterdir())) == len(validation)  # The reference's validation images...
    assert b"not the reference" not in (root / "val" / "images" / "val_0.JPEG").read_bytes()  # ...and never the repository's.
    assert "400 training images in 200 classes" in result.stdout and "4 images of n02480855, n10148035 dropped" in result.stdout
    from training.data import Limits, load_dataset

    dataset = load_dataset("tiny-imagenet", tmp_path / "full", (32, 32), Limits(None, 10))
    assert dataset.num_classes == 200 and len(dataset.train) == 400


def test_a_checkout_missing_classes_is_refused_by_name(tmp_path, real_data_dir):
    repo = _fake_imagenet_repo(tmp_path, real_data_dir / "tiny-imagenet-200-subset.zip", ["n01443537"])
    result = _assemble(repo, real_data_dir, tmp_path / "full")
    assert result.returncode != 0 and "has no training images for 199 classes" in result.stderr


@pytest.fixture(autouse=True)
def _no_module_leak():
    yield
    sys.modules.pop("training_throughput", None)
    if str(ROOT / "benchmarks") in sys.path:
        sys.path.remove(str(ROOT / "benchmarks"))
