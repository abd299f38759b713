"""Checks an export folder holds only complete, servable versions (run as a script, e.g. inside a
mount namespace whose tmpfs the test cannot see from outside).

    python -m tests.integration.export_check EXPORT_ROOT NAME  ->  one JSON line
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np


def check(folder: Path) -> dict:
    report = {"complete": [], "incomplete": [], "temporary": []}
    if not folder.is_dir():
        return report
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".tmp-"):
            report["temporary"].append(path.name)
        if not path.name.isdigit():
            continue
        card_path = path / "model_card.json"
        try:
            card = json.loads(card_path.read_text())
            intact = all(hashlib.sha256((path / name).read_bytes()).hexdigest() == digest for name, digest in card["artifacts"].items())
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
            height, width = card["input_size"]
            (probabilities,) = session.run(None, {"pixels": np.zeros((1, height, width, 3), np.float32)})
            servable = intact and abs(float(probabilities.sum()) - 1.0) < 1e-4 and (path / "saved_model.pb").is_file()
        except (OSError, ValueError, KeyError) as error:
            servable, card = False, {"error": str(error)}
        report["complete" if servable else "incomplete"].append(int(path.name))
    return report


if __name__ == "__main__":
    print(json.dumps(check(Path(sys.argv[1]) / sys.argv[2])))
