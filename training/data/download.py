"""Downloads the official dataset archives, only when the user asks (`python -m training download`).

Shows a progress bar, resumes a partial download with an HTTP Range request, and verifies the
archive's MD5 checksum (the one the dataset authors publish) before moving it into place.
Nothing in the test suite downloads from the internet; tests serve a file on loopback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Archive:
    filename: str
    url: str
    md5: str


ARCHIVES = {
    "cifar10": Archive(
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "tiny-imagenet": Archive(
        "tiny-imagenet-200.zip",
        "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        "90528d7ca1a48142e341f4ef8d21d0de",
    ),
}


class DownloadError(RuntimeError):
    """A download failed or its checksum did not match."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _progress(done: int, total: int | None, stream) -> None:
    if total:
        filled = int(30 * done / total)
        stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:.1f}/{total / 1e6:.1f} MB")
    else:
        stream.write(f"\r{done / 1e6:.1f} MB")
    stream.flush()


def fetch(url: str, destination: Path, md5: str | None, timeout: float = 30.0, stream=sys.stderr) -> Path:
    """Downloads ``url`` to ``destination``, resuming ``destination.part`` and checking ``md5``."""
    destination = Path(destination)
    if destination.is_file() and (md5 is None or md5sum(destination) == md5):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            if not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            with open(partial, "ab" if resumed else "wb") as handle:
                done = offset
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    done += len(block)
                    _progress(done, total, stream)
            stream.write("\n")
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            pass  # The partial file is already complete; verify it below.
        else:
            raise DownloadError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"downloading {url} failed: {error}; run the command again to resume from {partial}") from error
    if md5 is not None:
        actual = md5sum(partial)
        if actual != md5:
            partial.unlink()
            raise DownloadError(f"checksum mismatch for {url}: expected MD5 {md5}, got {actual}; the file was removed")
    partial.replace(destination)
    return destination


def download(dataset: str, directory: str | Path) -> Path:
    """Downloads the official archive of ``dataset`` ('cifar10' or 'tiny-imagenet') into ``directory``."""
    if dataset not in ARCHIVES:
        raise DownloadError(f"unknown dataset {dataset!r}; downloadable: {', '.join(ARCHIVES)}")
    archive = ARCHIVES[dataset]
    return fetch(archive.url, Path(directory) / archive.filename, archive.md5)
