"""What an export is called and where it goes: the model name rules and the export root."""

from __future__ import annotations

import os
import re
from pathlib import Path

EXPORT_ROOT_VARIABLE = "IMGCLF_EXPORT_ROOT"
DEFAULT_EXPORT_ROOT = "exports"
# A BentoML tag name: lowercase letters, digits, '-', '_' and '.', starting and ending alphanumeric.
NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?")


class ExportError(ValueError):
    """The run cannot be exported (no model, not an image model, bad name, unwritable root)."""


def default_export_root() -> Path:
    return Path(os.environ.get(EXPORT_ROOT_VARIABLE) or DEFAULT_EXPORT_ROOT)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ExportError(
            f"model name {name!r} is not valid: use 1-63 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (no path separators or spaces)"
        )
    return name


def default_name(run_config: dict) -> str:
    """The task's stable export name; for a task trained on another dataset, derived from that data."""
    from training import tasks

    task = run_config["task"]
    registered = tasks.TASKS.get(task["name"])
    name = task.get("export_name") or (registered.export_name if registered else task["name"])
    if registered is not None and task["dataset"] != registered.dataset:
        source = Path(run_config.get("data_dir") or task["dataset"]).name
        stem = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-") or task["dataset"]
        name = f"{stem}-{name.split('-', 1)[-1]}"
    return check_name(name[:63].rstrip("-_."))
