"""Which model calls a person must look at before they count as verified (the *needs review* bin).

A call needs review when the model is unsure (its calibrated confidence is below the review threshold), when
the cell looks unlike the training data so that the stain-robust model made the call (on other labs' cells
confident calls were often wrong: 56 of 87 calls at 0.90 or more on one lab's 300 cells), or when the
probabilities are not numbers at all. Nothing decides this but this function: the CLI's JSON/CSV and the
window's bin use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

LOW_CONFIDENCE = "low confidence"
FOREIGN = "looks unlike the training data"
NOT_A_NUMBER = "probabilities are not numbers"


def review_reason(probabilities: Iterable[float], threshold: float, foreign: bool = False) -> str | None:
    """Why a model call needs a person's review, or None when it may be accepted as it is."""
    values = [float(value) for value in probabilities]
    if not values or not all(math.isfinite(value) for value in values):
        return NOT_A_NUMBER
    if foreign:
        return FOREIGN
    if max(values) < threshold:
        return LOW_CONFIDENCE
    return None
