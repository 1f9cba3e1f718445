"""A fake classifier for GUI tests that need control over timing and calls."""

from __future__ import annotations

import time

import numpy as np

MODEL_ORDER = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil")


class FakeClassifier:
    """Calls every image by the brightness of its top-left pixel; optional delay per batch."""

    name, version, sha256 = "fake", "0", "0" * 64
    review_threshold = 0.9
    view_spec = None  # the pipeline hands it the decoded images (predict)
    domain = None  # no out-of-domain score
    profile = None
    model_dir = None
    has_robust_model = False

    @property
    def base(self):
        return self

    @property
    def identity(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def __init__(self, delay: float = 0.0, confidence: float = 0.95):
        self.classes = MODEL_ORDER
        self.delay = delay
        self.confidence = confidence
        self.calls = 0

    def predict(self, images):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        rows = []
        for image in images:
            chosen = int(image[0, 0].sum()) % len(self.classes)
            row = np.full(len(self.classes), (1 - self.confidence) / (len(self.classes) - 1))
            row[chosen] = self.confidence
            rows.append(row)
        return np.array(rows)
