"""Exporting a trained run: TF-Serving SavedModel + verified ONNX + model card, into the BentoML store.

``export_run(RUN_DIR)`` writes ``EXPORT_ROOT/<name>/<version>/``::

    saved_model.pb, variables/, fingerprint.pb   TensorFlow Serving layout, signatures
                                                 serving_default and classify (see saved_model.py)
    assets/labels.txt, assets/names.txt          one label per line, in output order
    model.onnx                                   pixels -> probabilities, contract in its metadata
    labels.json                                  class ids and readable names
    model_card.json                              see card.py

and logs what the conversion libraries say into ``RUN_DIR/export.log``.

and saves the same folder as the BentoML model ``<name>:<version>``. Versions are integers that
increase with each export of a name (across the export root and the store).

Two steps: `build.py` writes and verifies everything in a private scratch folder; `publish.py`
copies it beside the versions, saves it to the store and renames it into place under a lock, so
a crash at any point leaves only complete versions. Names and the export root: `naming.py`.
Write errors (read-only or full disk) become an `ExportError`.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from training import logs
from training.export.build import build, read_run
from training.export.naming import ExportError, check_name, default_export_root, default_name
from training.export.publish import SCRATCH_PREFIX, STAGING_PREFIX, ExportResult, publish, remove_stale

log = logging.getLogger("training")

EXPORT_LOG = "export.log"

__all__ = ["ExportError", "ExportResult", "check_name", "default_export_root", "default_name", "export_run"]


def export_run(
    run_dir: str | Path,
    export_root: str | Path | None = None,
    name: str | None = None,
    store: bool = True,
    data_dir: str | None = None,
    int8: bool | None = None,
) -> ExportResult:
    """Exports the trained model of ``run_dir``; see the module docstring for what is written.

    ``int8`` adds ``model.int8.onnx``, the fastest of the configurations that quantize.py tries
    within its accuracy limit (None: as the run's task config says).
    """
    run_dir = Path(run_dir)
    root = Path(export_root) if export_root else default_export_root()
    if name is not None:
        check_name(name)
    run_config, labels, metrics = read_run(run_dir)
    name = name or default_name(run_config)
    int8 = bool(run_config["task"].get("int8", False)) if int8 is None else int8
    folder = root / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        probe.rmdir()  # Fail now, not after minutes of converting, on a read-only root.
        remove_stale(folder)
        remove_stale(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    except OSError as error:
        raise ExportError(f"cannot write exports under {root}: {error.strerror or error}") from error
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        # TensorFlow's and tf2onnx's notices go to the run's export.log, not the terminal.
        with logs.into_file(run_dir / EXPORT_LOG):
            card = build(run_dir, run_config, labels, metrics, name, scratch, data_dir, int8)
            return publish(name, folder, scratch, card, store)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG):
            raise ExportError(
                f"cannot write the export of {name} under {root}: {error.strerror} "
                f"({error.filename or 'while writing'}); earlier versions are untouched"
            ) from error
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
