"""Helpers the command-line commands share."""

from __future__ import annotations

import sys
from pathlib import Path

from wbc_desktop.core.differential import CLASSES


def display_order(model_classes: tuple[str, ...]) -> tuple[str, ...]:
    """The usual differential order (neutrophil first) for known classes, then any others the model has."""
    known = [c for c in CLASSES if c in model_classes]
    return tuple(known + [c for c in model_classes if c not in known])


def load_model_or_explain(model_dir: Path | None):
    """The LiteRT classifier, or ``None`` after printing why the model cannot be used."""
    from wbc_desktop.inference.litert import load_classifier
    from wbc_desktop.inference.manifest import ModelError

    try:
        return load_classifier(model_dir)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def model_info(classifier) -> dict:
    return {"name": classifier.name, "version": classifier.version, "sha256": classifier.sha256}
