"""Report figures (matplotlib, imported lazily; no TensorFlow): confusion matrix and training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Counts and row-normalised (recall) confusion matrices side by side."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    for axis, data, fmt, subtitle in (
        (axes[0], counts, "d", "counts"),
        (axes[1], normalised, ".3f", "row-normalised (recall)"),
    ):
        image = axis.imshow(data, cmap="Blues", vmin=0)
        axis.set_xticks(range(len(classes)), classes, rotation=35, ha="right")
        axis.set_yticks(range(len(classes)), classes)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(subtitle)
        limit = data.max() / 2.0 if data.size else 0
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                axis.text(
                    j,
                    i,
                    format(data[i, j], fmt),
                    ha="center",
                    va="center",
                    color="white" if data[i, j] > limit else "black",
                    fontsize=9,
                )
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_curves(history: dict[str, Sequence[float]], path: Path, title: str) -> None:
    """Accuracy and loss per epoch, training (augmented) vs validation (inference mode)."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for axis, key, label in ((axes[0], "accuracy", "accuracy"), (axes[1], "loss", "loss")):
        if key in history:
            axis.plot(epochs, history[key], "o-", label=f"train {label}")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], "s-", label=f"validation {label}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    axes[0].set_ylim(0, 1.0)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
