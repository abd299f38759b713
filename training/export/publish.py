"""Publishing a built export atomically: beside its versions and into the BentoML store.

The verified scratch folder is copied beside the versions as ``EXPORT_ROOT/<name>/.tmp-<pid>-...``
(TensorFlow Serving ignores it: it loads only integer folder names), then, under a lock, given
the next version number, saved to the store and renamed into place. A crash at any point
leaves only complete versions; a stale temporary folder is removed by the next export of that name.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

from training.export.card import CARD_FILE
from training.run_dir import copy_tree, write_json

log = logging.getLogger("training")

STAGING_PREFIX = ".tmp-"
SCRATCH_PREFIX = "imgclf-export-"
CRASH_VARIABLE = "IMGCLF_EXPORT_CRASH_AT"


@dataclasses.dataclass(frozen=True)
class ExportResult:
    name: str
    version: int
    path: Path
    store_tag: str | None
    card: dict


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, prefix: str = STAGING_PREFIX) -> None:
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


def publish(name: str, folder: Path, scratch: Path, card: dict, store: bool) -> ExportResult:
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
