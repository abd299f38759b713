"""Dataset loaders on tiny fixtures written in the official formats, and on the real subsets."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    CIFAR_NAMES,
    WNIDS,
    jpeg_bytes,
    pattern,
    write_cifar_archive,
    write_tiny_imagenet,
    zip_folder,
)
from training.data import DatasetError, Limits, cifar10, load_dataset


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return write_tiny_imagenet(tmp_path / "data")


def test_tiny_imagenet_folder(tiny_folder):
    dataset = load_dataset("tiny-imagenet", tiny_folder.parent, (32, 32))
    assert dataset.class_ids == tuple(sorted(WNIDS + ("n09999999",)))
    assert dataset.class_names[0] == "goldfish, Carassius auratus"
    assert dataset.train.images.shape == (12, 32, 32, 3) and dataset.train.images.dtype == np.uint8
    assert len(dataset.validation) == 6
    assert sorted(np.bincount(dataset.train.labels, minlength=4).tolist()) == [0, 4, 4, 4]
    reasons = {Path(s.path.split(":")[-1]).name: s.reason for s in dataset.skipped}
    assert "truncated" in reasons[f"{WNIDS[1]}_corrupt.JPEG"] or "cannot decode" in reasons[f"{WNIDS[1]}_corrupt.JPEG"]
    assert reasons["val_unlisted.JPEG"] == "not listed in val/val_annotations.txt"
    assert reasons["val_missing.JPEG"] == "listed in val_annotations.txt but missing"
    assert any("n09999999" in problem for problem in dataset.problems)


def test_tiny_imagenet_grayscale_becomes_rgb(tiny_folder):
    dataset = load_dataset("tiny-imagenet", tiny_folder, (64, 64))
    first = dataset.train.images[0]  # goldfish_0 was written grayscale
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first[..., 0], first[..., 1]) and np.array_equal(first[..., 1], first[..., 2])


def test_tiny_imagenet_zip_matches_folder(tiny_folder, tmp_path):
    archive = zip_folder(tiny_folder, tmp_path / "tiny-imagenet-200.zip")
    from_zip = load_dataset("tiny-imagenet", archive, (32, 32))
    from_folder = load_dataset("tiny-imagenet", tiny_folder, (32, 32))
    np.testing.assert_array_equal(from_zip.train.images, from_folder.train.images)
    np.testing.assert_array_equal(from_zip.validation.labels, from_folder.validation.labels)
    assert len(from_zip.skipped) == len(from_folder.skipped) == 3
    # A folder holding the zip is found too.
    assert load_dataset("tiny-imagenet", tmp_path, (32, 32)).num_classes == 4


def test_tiny_imagenet_limits_take_each_class(tiny_folder):
    dataset = load_dataset("tiny-imagenet", tiny_folder, (32, 32), Limits(max_train_images=8, max_validation_images=4))
    assert len(dataset.train) == 6  # two of each of the three classes that have images
    assert len(dataset.validation) == 3


@pytest.mark.parametrize("remove,message", [("wnids.txt", "wnids.txt"), ("val/val_annotations.txt", "val_annotations.txt")])
def test_tiny_imagenet_missing_file_is_named(tiny_folder, remove, message):
    (tiny_folder / remove).unlink()
    with pytest.raises(DatasetError, match=message):
        load_dataset("tiny-imagenet", tiny_folder, (32, 32))


def test_missing_dataset_folder_is_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("tiny-imagenet", tmp_path / "nowhere", (32, 32))
    with pytest.raises(DatasetError, match="no Tiny ImageNet found"):
        load_dataset("tiny-imagenet", tmp_path, (32, 32))
    with pytest.raises(DatasetError, match="no CIFAR-10 found"):
        load_dataset("cifar10", tmp_path, (32, 32))
    with pytest.raises(DatasetError, match="needs --data-dir"):
        load_dataset("cifar10", None, (32, 32))


def test_corrupt_zip_is_named(tmp_path):
    bad = tmp_path / "tiny-imagenet-200.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_dataset("tiny-imagenet", tmp_path, (32, 32))


@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-pickles", "numpy1-pickles"])
def test_cifar_archive(tmp_path, numpy1):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", numpy1=numpy1)
    dataset = load_dataset("cifar10", tmp_path, (71, 71))
    assert dataset.class_ids == CIFAR_NAMES
    assert dataset.train.images.shape == (100, 71, 71, 3)
    assert dataset.validation.images.shape == (20, 71, 71, 3)
    assert np.bincount(dataset.train.labels).tolist() == [10] * 10


def test_cifar_rows_are_planar_rgb(tmp_path):
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    dataset = load_dataset("cifar10", tmp_path, (32, 32))
    expected = pattern(np.random.default_rng(1), 0, size=32)  # the first image written
    np.testing.assert_array_equal(dataset.train.images[0], expected)


def test_cifar_extracted_folder(tmp_path):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    dataset = load_dataset("cifar10", tmp_path / "x", (32, 32))  # finds cifar-10-batches-py/ inside
    assert len(dataset.train) == 100
    assert load_dataset("cifar10", tmp_path / "x" / "cifar-10-batches-py", (32, 32)).num_classes == 10


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_cifar_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Exploit(marker), b"labels": []}, protocol=2)
    with pytest.raises(DatasetError, match=r"refusing to load (posix|os)\.system"):
        cifar10.load_batch(payload, "crafted batch")
    assert not marker.exists()


def test_cifar_truncated_batch_is_named(tmp_path):
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    batch = tmp_path / "x" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(DatasetError, match="data_batch_3 is not a valid CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path / "x", (32, 32))


def _write_folder(root: Path, classes=("cats", "dogs"), per_class=10) -> Path:
    rng = np.random.default_rng(5)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            size = 40 + index * 7  # images of many sizes
            image = pattern(rng, label, size=size)
            (root / name / f"{index}.jpg").write_bytes(jpeg_bytes(image))
    return root


def test_image_folder_splits_and_skips_corrupt(tmp_path):
    root = _write_folder(tmp_path / "pets")
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    (root / "labels.txt").write_text("cats\tHouse cat\n")
    dataset = load_dataset("folder", root, (24, 24))
    assert dataset.class_ids == ("cats", "dogs")
    assert dataset.class_names == ("House cat", "dogs")
    assert len(dataset.train) + len(dataset.validation) == 20
    assert len(dataset.validation) >= 2
    assert [Path(s.path).name for s in dataset.skipped] == ["broken.jpg"]


def test_image_folder_with_explicit_splits(tmp_path):
    _write_folder(tmp_path / "set" / "train")
    _write_folder(tmp_path / "set" / "val", per_class=3)
    dataset = load_dataset("folder", tmp_path / "set", (16, 16))
    assert (len(dataset.train), len(dataset.validation)) == (20, 6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("folder", tmp_path / "none", (16, 16))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset("folder", tmp_path / "empty", (16, 16))
    (tmp_path / "noimages" / "a").mkdir(parents=True)
    (tmp_path / "noimages" / "a" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError, match="no image files"):
        load_dataset("folder", tmp_path / "noimages", (16, 16))


def test_tiny_imagenet_class_folders_linked_from_elsewhere_are_read(tmp_path):
    top = write_tiny_imagenet(tmp_path / "data", extras=False)
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    for wnid in WNIDS:  # Every class folder is a link, as when a dataset is linked in from another disk.
        (top / "train" / wnid).rename(elsewhere / wnid)
        (top / "train" / wnid).symlink_to(elsewhere / wnid, target_is_directory=True)
    (elsewhere / WNIDS[0] / "loop").symlink_to(elsewhere / WNIDS[0], target_is_directory=True)  # A cycle ends.
    dataset = load_dataset("tiny-imagenet", top, (16, 16))
    assert sorted(np.bincount(dataset.train.labels).tolist()) == [4, 4, 4]


def test_image_folder_follows_linked_class_and_sub_folders(tmp_path):
    source = _write_folder(tmp_path / "source")
    root = tmp_path / "linked"
    root.mkdir()
    (root / "cats").symlink_to(source / "cats", target_is_directory=True)
    (root / "dogs").mkdir()
    (root / "dogs" / "batch1").symlink_to(source / "dogs", target_is_directory=True)
    dataset = load_dataset("folder", root, (16, 16))
    assert dataset.class_ids == ("cats", "dogs") and len(dataset.train) + len(dataset.validation) == 20


def test_digits_demo_dataset():
    dataset = load_dataset("digits", None, (32, 32))
    assert dataset.num_classes == 10 and dataset.class_names[3] == "three"
    assert len(dataset.train) + len(dataset.validation) == 1797
    assert dataset.train.images.shape[1:] == (32, 32, 3)


def test_unknown_source():
    with pytest.raises(DatasetError, match="unknown dataset source"):
        load_dataset("mnist", "/tmp", (32, 32))


def test_real_tiny_imagenet_subset(real_data_dir):
    dataset = load_dataset("tiny-imagenet", real_data_dir, (32, 32), Limits(400, 200))
    assert dataset.num_classes == 200
    assert dataset.class_names[dataset.class_ids.index("n01443537")].startswith("goldfish")
    assert len(dataset.train) == 400 and len(dataset.validation) == 200
    assert dataset.skipped == ()


def test_real_cifar10_subset(real_data_dir):
    dataset = load_dataset("cifar10", real_data_dir, (32, 32))
    assert dataset.class_ids[0] == "airplane"
    assert (len(dataset.train), len(dataset.validation)) == (10000, 5000)
    assert np.bincount(dataset.validation.labels).tolist() == [500] * 10
