"""Classification metrics in NumPy: the paper's report, calibration, temperature and review coverage."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

REVIEW_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def confusion_matrix(targets: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets), np.asarray(predicted)), 1)
    return matrix


def classification_report(matrix: np.ndarray, classes: Sequence[str]) -> dict:
    """Precision, recall, F1 and support per class, with macro and weighted averages and accuracy."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = support.sum()
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    weights = support / total if total else np.zeros_like(support)
    # Macro averages over the classes the data has: an eight-class model scored on five-class data must not
    # average in three empty classes (a normal cell it calls IG still costs accuracy and that class's recall).
    present = support > 0 if support.any() else np.ones_like(support, dtype=bool)
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "per_class": per_class,
        "macro": {
            "precision": float(precision[present].mean()),
            "recall": float(recall[present].mean()),
            "f1": float(f1[present].mean()),
        },
        "weighted": {
            "precision": float((precision * weights).sum()),
            "recall": float((recall * weights).sum()),
            "f1": float((f1 * weights).sum()),
        },
        "support": int(total),
    }


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width confidence bins (Guo et al. 2017)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def _nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_probs = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(targets)), targets].mean())


# The largest temperature a model manifest may carry (inference/manifest.py checks it, with 0, NaN and negatives,
# which turn calls into nonsense): real models calibrate near 1.
MAX_TEMPERATURE = 10.0


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising validation NLL (golden-section search on log T in [0.05, MAX_TEMPERATURE]: a
    barely trained model's would otherwise run to 20, which its own manifest then refused)."""
    logits = np.asarray(logits, dtype=np.float64)
    low, high = np.log(0.05), np.log(MAX_TEMPERATURE)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(logits, targets, np.exp(a)), _nll(logits, targets, np.exp(b))
    for _ in range(80):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(logits, targets, np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(logits, targets, np.exp(b))
    return float(np.exp((low + high) / 2.0))


def coverage_table(
    probabilities: np.ndarray, targets: np.ndarray, thresholds: Sequence[float] = REVIEW_THRESHOLDS
) -> list[dict]:
    """For each threshold: share of cells accepted automatically and the accuracy on them."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    table = []
    for threshold in thresholds:
        accepted = confidence >= threshold
        table.append(
            {
                "threshold": float(threshold),
                "coverage": float(accepted.mean()) if len(targets) else 0.0,
                "accuracy_accepted": float(correct[accepted].mean()) if accepted.any() else None,
                "sent_to_review": int((~accepted).sum()),
            }
        )
    return table


def evaluation_summary(probabilities: np.ndarray, targets: np.ndarray, classes: Sequence[str]) -> dict:
    """Everything `evaluate` reports for one split, as plain JSON-ready data."""
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(targets, predicted, len(classes))
    report = classification_report(matrix, classes)
    report["confusion_matrix"] = matrix.tolist()
    report["classes"] = list(classes)
    report["ece"] = expected_calibration_error(probabilities, targets)
    report["coverage"] = coverage_table(probabilities, targets)
    return report
