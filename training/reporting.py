"""What a run reports: top-1/top-5 and per-class accuracy, the most-confused classes, and the
accuracy/loss curves drawn like the study's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.run_dir import write_atomic


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray, class_ids, class_names, top_pairs: int = 20) -> dict:
    """Accuracy figures and a confusion summary from predicted probabilities."""
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    k = min(5, num_classes)
    top_k = np.argsort(-probabilities, axis=1)[:, :k]
    top1 = float(np.mean(predicted == labels)) if len(labels) else 0.0
    top5 = float(np.mean((top_k == labels[:, None]).any(axis=1))) if len(labels) else 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = {class_ids[i]: (float(confusion[i, i] / support[i]) if support[i] else None) for i in range(num_classes)}
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(-off_diagonal, axis=None)[:top_pairs]
    pairs = []
    for flat in order:
        true, guess = divmod(int(flat), num_classes)
        if off_diagonal[true, guess] == 0:
            break
        pairs.append(
            {
                "true": class_ids[true],
                "true_name": class_names[true],
                "predicted": class_ids[guess],
                "predicted_name": class_names[guess],
                "count": int(off_diagonal[true, guess]),
                "share_of_true_class": float(off_diagonal[true, guess] / support[true]),
            }
        )
    return {
        "val_top1": top1,
        "val_top5": top5,
        "top_k": k,
        "validation_images": int(len(labels)),
        "per_class_accuracy": per_class,
        "most_confused": pairs,
    }


def write_history_csv(path: Path, history: list[dict]) -> None:
    keys = ["epoch"] + sorted({key for row in history for key in row if key != "epoch"})
    lines = [",".join(keys)]
    for row in history:
        lines.append(",".join(str(row.get(key, "")) for key in keys))
    write_atomic(path, "\n".join(lines) + "\n")


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    """Accuracy and loss per epoch, training and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    epochs = [row["epoch"] for row in history]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((left, "accuracy", "accuracy"), (right, "loss", "loss")):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                axis.plot(epochs, values, style, markersize=3, label=("validation " if prefix else "training ") + label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    pyplot.close(figure)
    temporary.replace(path)
