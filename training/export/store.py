"""The BentoML model store side of an export: one BentoML model per exported version.

Each model is tagged ``<name>:<version>`` and holds the whole export folder (SavedModel, ONNX,
labels, model card), so a service needs nothing else; the card is also its metadata. BentoML
writes a new model to a temporary folder and moves it into the store, so the store never holds
half a model. BentoML is imported only here and only when a store is used.
"""

from __future__ import annotations

from pathlib import Path

from training.interface.contract import STORE_MODULE
from training.run_dir import copy_tree


def versions(name: str) -> list[int]:
    """The integer versions of ``name`` in the local store (``BENTOML_HOME``)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        models = bentoml.models.list(name)
    except NotFound:
        return []
    return sorted(int(model.tag.version) for model in models if str(model.tag.version).isdigit())


def save(name: str, version: int, folder: Path, card: dict) -> str:
    """Copies the export ``folder`` into a new store model ``name:version``; returns the tag."""
    import bentoml

    labels = {"task": card["task"]["name"], "dataset": card["dataset"]["source"], "runtime": "onnx", "project": STORE_MODULE}
    with bentoml.models.create(f"{name}:{version}", module=STORE_MODULE, labels=labels, metadata=card) as model:
        copy_tree(folder, Path(model.path))
        return str(model.tag)


def delete(tag: str) -> None:
    import bentoml

    bentoml.models.delete(tag)
