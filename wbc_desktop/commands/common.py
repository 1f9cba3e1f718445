"""Helpers the command-line commands share."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from wbc_desktop.core.domain import OUT_OF_DOMAIN_MESSAGE, batch_flagged, batch_score

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2


class Progress:
    """A throttled one-line progress bar on stderr (a line per update when stderr is not a terminal)."""

    def __init__(self, total: int, label: str = "classifying", stream=None, interval: float = 0.25, unit: str = "img"):
        self.total, self.label, self.interval, self.unit = total, label, interval, unit
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.last = 0.0
        self.done = 0
        self.tty = self.stream.isatty()  # every text stream has it (io.StringIO answers False)

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if done < self.total and now - self.last < (self.interval if self.tty else 5.0):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        width = 30
        filled = int(width * done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {rate:.1f} {self.unit}/s"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def load_model_or_explain(model_dir: Path | None, profile_dir: Path | None = None):
    """The LiteRT classifier (wrapped in a lab profile if given), or ``None`` after printing why not."""
    from wbc_desktop.core.lab_profile import ProfileError
    from wbc_desktop.inference.lab_profile import load_with_profile
    from wbc_desktop.inference.litert import load_classifier
    from wbc_desktop.inference.manifest import ModelError

    try:
        return load_with_profile(load_classifier(model_dir), profile_dir)
    except (ModelError, ProfileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def domain_summary(scores: list[float], threshold: float | None) -> dict:
    """Batch-level out-of-domain result for the JSON (the median image score against the model's threshold)."""
    if not scores or threshold is None:
        return {"score": None, "threshold": threshold, "flag": False}
    score = batch_score(scores)
    flag = batch_flagged(scores, threshold)
    summary = {"score": round(score, 4), "threshold": round(threshold, 4), "flag": flag}
    if flag:
        summary["message"] = OUT_OF_DOMAIN_MESSAGE
    return summary


def domain_threshold(classifier) -> float | None:
    return classifier.domain.batch_threshold if classifier.domain is not None else None


def model_info(classifier) -> dict:
    """The model block of count's and evaluate's JSON: who made the calls, and the classes it can name (a reader
    tells a five-class report from an eight-class one by it)."""
    return {**classifier.identity, "classes": list(classifier.classes)}


def classified_by(classifier, domain_score: float) -> str:
    """Which model made a cell's call: a lab profile's, the stain-robust one (for a cell that looks foreign),
    or the bundled model."""
    if classifier.profile is not None:
        return f"lab profile {classifier.profile.name}"
    from wbc_desktop.inference.litert import classified_by_robust  # deferred: keeps `import cli` light

    return STAIN_ROBUST if classified_by_robust(classifier, domain_score) else "bundled model"


STAIN_ROBUST = "stain-robust model"
