"""Assembles the full-set benchmark's Tiny ImageNet: all 100,000 training images, validated only on ../shared/data's validation images.

The full training set comes from a checkout of the public repository rangeetpan/IMagenet, whose
``tiny-imagenet-200/train/`` holds 500 images for each of the 200 classes plus two extra classes
(n02480855, n10148035), dropped here. Its own validation images are never read: the validation
split (and ``wnids.txt``, ``words.txt``) come from the reference data's zip, so the accuracy
measured on the full set is measured on the same held-out images as every other row.

The result is a folder in the official layout that ``--dataset tiny-imagenet --data-dir`` reads:

    .venv/bin/python benchmarks/full_tiny_imagenet.py --repo CHECKOUT --reference $IMGCLF_DATA_DIR --out ~/data/tiny-imagenet-full

``CHECKOUT`` is a clone of https://github.com/rangeetpan/IMagenet (or a bare git mirror of it).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

ROOT = "tiny-imagenet-200"
EXTRA_CLASSES = ("n02480855", "n10148035")


def reference_zip(reference: Path) -> zipfile.ZipFile:
    path = reference if reference.is_file() else reference / "tiny-imagenet-200-subset.zip"
    return zipfile.ZipFile(path)


def copy_reference(archive: zipfile.ZipFile, out: Path) -> list[str]:
    """wnids.txt, words.txt and val/ from the reference zip; returns the 200 class ids."""
    for name in archive.namelist():
        relative = name[len(ROOT) + 1 :] if name.startswith(ROOT + "/") else name
        if relative in ("wnids.txt", "words.txt") or (relative.startswith("val/") and not name.endswith("/")):
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return (out / "wnids.txt").read_text().split()


def training_tree(repo: Path) -> tarfile.TarFile:
    """The checkout's ``tiny-imagenet-200/train`` as a tar stream (works on a bare mirror too)."""
    git_dir = repo if (repo / "HEAD").exists() and not (repo / ".git").exists() else repo / ".git"
    data = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "HEAD", f"{ROOT}/train"], check=True, capture_output=True).stdout
    return tarfile.open(fileobj=io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="a checkout or git mirror of rangeetpan/IMagenet")
    parser.add_argument("--reference", type=Path, required=True, help="the reference data folder (../shared/data) or its tiny-imagenet zip")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out / ROOT
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    classes = set(copy_reference(reference_zip(args.reference), out))
    counts: dict[str, int] = {}
    dropped = 0
    with training_tree(args.repo) as tree:
        for member in tree:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 5 or parts[3] != "images" or not parts[4].endswith(".JPEG"):
                continue
            wnid = parts[2]
            if wnid not in classes:
                dropped += 1
                continue
            target = out / "train" / wnid / "images" / parts[4]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tree.extractfile(member).read())
            counts[wnid] = counts.get(wnid, 0) + 1
    missing = classes - counts.keys()
    if missing:
        raise SystemExit(f"the checkout has no training images for {len(missing)} classes, e.g. {sorted(missing)[:3]}")
    validation = len(list((out / "val" / "images").iterdir()))
    print(
        f"{out}: {sum(counts.values())} training images in {len(counts)} classes "
        f"({min(counts.values())}-{max(counts.values())} per class), {dropped} images of {', '.join(EXTRA_CLASSES)} dropped, "
        f"{validation} validation images from {args.reference}"
    )


if __name__ == "__main__":
    main()
