"""The classifier interface the pipeline, CLI and GUI program against (a fake satisfies it in tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Classifier(Protocol):
    """Anything that turns RGB uint8 arrays into per-class probabilities."""

    classes: tuple[str, ...]
    name: str
    version: str
    sha256: str
    review_threshold: float

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, len(classes))`` calibrated probabilities for N RGB uint8 images of any size."""
        ...


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax of ``logits / temperature`` along the last axis."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    scaled -= scaled.max(axis=-1, keepdims=True)
    exps = np.exp(scaled)
    return exps / exps.sum(axis=-1, keepdims=True)
