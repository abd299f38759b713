"""Corrections sent back by users, stored as an image-folder dataset that `train --dataset folder`
(and `train --extra-data`) reads: ``FEEDBACK_ROOT/<label>/<sha256>.<ext>``, one file per distinct
image and label, beside an append-only log, ``FEEDBACK_ROOT/feedback.jsonl`` (time, model, version,
the model's answer and score, the corrected label; never a token).

Safety:

* the folder is named by a label that must be one of the model's class ids (checked by the
  caller against the served model) and a plain file name, so no path is built from input; the
  file is named by the image's SHA-256 and the extension of the format Pillow found in it;
* every write goes to ``FEEDBACK_ROOT/.tmp/`` first and is renamed into place (atomic on one
  file system; a label's first image comes inside its folder, so no class folder is seen
  empty): a worker killed mid-write leaves at most a temporary file, which readers never see
  (the dataset reader skips dot-folders) and which is removed after an hour; two workers
  storing the same image write the same name, so the second rename changes nothing;
* each log line is one ``write`` to a file opened with O_APPEND: lines from several workers never
  interleave;
* one image may be at most IMGCLF_FEEDBACK_MAX_IMAGE_BYTES, and the folder at most
  IMGCLF_FEEDBACK_QUOTA_BYTES; past either the refusal names the limit (413, and 507 /
  RESOURCE_EXHAUSTED for the quota), and nothing is written.

``_unlabelled/`` holds low-confidence images collected for later labelling (IMGCLF_COLLECT_BELOW).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from serving.core.errors import InsufficientStorage, InvalidInput, PayloadTooLarge

UNLABELLED = "_unlabelled"  # The image-folder reader skips it (training.data.image_folder.UNLABELLED).
LOG = "feedback.jsonl"
TEMPORARY = ".tmp"
STALE_SECONDS = 3600
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp", "TIFF": "tif", "MPO": "jpg"}


def image_extension(data: bytes) -> str:
    """The file extension of the image format Pillow reads in ``data``; `InvalidInput` if it is none it can store."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
    except (UnidentifiedImageError, OSError, ValueError):
        raise InvalidInput("the image is not an image Pillow can read (JPEG, PNG, GIF, BMP, WebP, TIFF)") from None
    if found not in EXTENSIONS:
        raise InvalidInput(f"the image is {found}, which feedback does not store; send JPEG, PNG, GIF, BMP, WebP or TIFF")
    return EXTENSIONS[found]


class FeedbackStore:
    def __init__(self, root: str | Path, max_image_bytes: int, quota_bytes: int):
        self.root, self.max_image_bytes, self.quota_bytes = Path(root), max_image_bytes, quota_bytes
        (self.root / TEMPORARY).mkdir(parents=True, exist_ok=True)
        self._remove_stale()

    def _remove_stale(self) -> None:
        """Temporary files of writes that never finished (a killed worker), once old enough that no live write owns them."""
        now = time.time()
        for path in (self.root / TEMPORARY).iterdir():
            try:
                if now - path.stat().st_mtime > STALE_SECONDS:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            except OSError:
                pass

    def usage(self) -> int:
        """Bytes under the root, temporary files included."""
        total = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.stat(os.path.join(directory, name)).st_size
                except OSError:
                    pass
        return total

    def check_size(self, data: bytes) -> None:
        if len(data) > self.max_image_bytes:
            raise PayloadTooLarge(
                f"the image is {len(data)} bytes, over the feedback limit of {self.max_image_bytes} (IMGCLF_FEEDBACK_MAX_IMAGE_BYTES)"
            )

    def store(self, data: bytes, folder: str) -> tuple[str, str, bool]:
        """Stores ``data`` under ``folder`` (a label, or `UNLABELLED`); returns (relative path, sha256, whether it was already there)."""
        if not folder or folder in (".", "..") or os.sep in folder or (os.altsep and os.altsep in folder) or "\0" in folder or folder.startswith("."):
            raise InvalidInput(f"label {folder!r} cannot name a folder")
        self.check_size(data)
        extension = image_extension(data)
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{folder}/{digest}.{extension}"
        target = self.root / relative
        if target.is_file():
            return relative, digest, True
        used = self.usage()
        if used + len(data) > self.quota_bytes:
            raise InsufficientStorage(
                f"the feedback folder holds {used} bytes; this image of {len(data)} would pass its quota of {self.quota_bytes} "
                "(IMGCLF_FEEDBACK_QUOTA_BYTES); nothing was stored"
            )
        temporary = self.root / TEMPORARY / f"{digest}.{uuid.uuid4().hex}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            self._publish(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return relative, digest, False

    def _publish(self, temporary: Path, target: Path) -> None:
        """Renames the written file into place. A label's first image arrives inside its folder,
        itself renamed into place, so that no class folder is ever seen empty."""
        if target.parent.is_dir():
            os.replace(temporary, target)
            return
        staging = self.root / TEMPORARY / f"folder.{uuid.uuid4().hex}"
        staging.mkdir()
        os.replace(temporary, staging / target.name)
        try:
            os.rename(staging, target.parent)
        except OSError:  # Another writer made the folder meanwhile: move the file in.
            os.replace(staging / target.name, target)
            staging.rmdir()

    def log(self, entry: dict) -> None:
        """Appends one line to the log, in one write."""
        line = json.dumps({"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"), **entry}, sort_keys=True) + "\n"
        descriptor = os.open(self.root / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
        finally:
            os.close(descriptor)


class RecentPredictions:
    """The images and answers of the last requests of this worker, by request id, so that feedback
    can name a prediction instead of sending its image again: at most ``count`` requests, each
    kept at most ``seconds``."""

    def __init__(self, count: int, seconds: float):
        self.count, self.seconds = count, seconds
        self._entries: OrderedDict[str, tuple[float, str, int, list[tuple[bytes, str, float]]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, model: str, version: int, images: list[tuple[bytes, str, float]]) -> str:
        request_id = uuid.uuid4().hex
        with self._lock:
            self._entries[request_id] = (time.monotonic(), model, version, images)
            while len(self._entries) > self.count:
                self._entries.popitem(last=False)
        return request_id

    def get(self, request_id: str, index: int) -> tuple[str, int, bytes, str, float]:
        """(model, version, image, predicted label, score) of image ``index`` of a kept request."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is not None and time.monotonic() - entry[0] > self.seconds:
                del self._entries[request_id]
                entry = None
        if entry is None:
            raise InvalidInput(
                f"request_id {request_id!r} is not one of this worker's last {self.count} predictions of the last {self.seconds:.0f} s "
                "(IMGCLF_FEEDBACK_KEEP, IMGCLF_FEEDBACK_KEEP_S); send the image itself"
            )
        _, model, version, images = entry
        if not 0 <= index < len(images):
            raise InvalidInput(f"index must be between 0 and {len(images) - 1} (the images of request {request_id}), got {index}")
        data, label, score = images[index]
        return model, version, data, label, score
