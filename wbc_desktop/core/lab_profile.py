"""Lab profiles: a softmax head (and temperature) over the bundled model's pooled features, fitted on cells a
technician verified. Pure NumPy; stored beside, never over, the bundled model.

The head is a correction of the bundled model rather than a replacement: its logits are the bundled model's
(divided by its temperature) plus a linear layer over the standardised features, started at zero and kept small
by L2. Fifty cells of a new lab cannot teach five classes from scratch (a basophil may not be among them), but
they can correct where the lab differs; what they do not cover stays as the bundled model knows it.

A fine-tuned profile (``adapt --head finetune``, :mod:`wbc_desktop.training.finetune`) carries its own model in
a sub-folder; its head is then the identity with the profile's temperature.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from wbc_desktop.core.atomic import atomic_write_bytes, atomic_write_text

PROFILE_FILE = "profile.json"
REPLAY_FILE = "replay_cells.npz"  # in the model store: a few of the model's training cells, as the model sees them
REPLAY_QUALITY = 95  # JPEG: 4 MB of raw arrays become about 1 MB; augmentation blurs more than this loses


class ProfileError(Exception):
    """A lab profile cannot be used (missing, damaged, or made for another model)."""


class AdaptCancelled(Exception):
    """The technician stopped the adaptation; nothing was written."""


@dataclass
class Head:
    """Standardise features, then a linear softmax layer."""

    classes: list[str]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray
    temperature: float = 1.0
    base_weight: float = 0.0  # multiplies the bundled model's logits; 0: a head from scratch (profiles before 2.0)

    def logits(self, features: np.ndarray, base_logits: np.ndarray | None = None) -> np.ndarray:
        own = ((features - self.mean) / self.std) @ self.weights + self.bias
        if self.base_weight:
            if base_logits is None:
                raise ValueError("this lab profile corrects the bundled model: its logits are needed")
            own = own + self.base_weight * base_logits
        return own


def fit_head(
    features: np.ndarray,
    targets: np.ndarray,
    classes: list[str],
    l2: float = 1e-2,
    steps: int = 800,
    learning_rate: float = 0.05,
    base_logits: np.ndarray | None = None,
    base_temperature: float = 1.0,
) -> Head:
    """Multinomial logistic regression with L2, full-batch Adam; classes balanced by weighting.

    With ``base_logits`` (the bundled model's, for the same cells) the head learns a correction added to
    ``base_logits / base_temperature``; without, a head from scratch."""
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-3
    x = (features - mean) / std
    n, d = x.shape
    k = len(classes)
    onehot = np.eye(k)[targets]
    counts = np.bincount(targets, minlength=k).astype(np.float64)
    sample_weight = (n / (k * np.maximum(counts, 1)))[targets][:, None]
    weights, bias = np.zeros((d, k)), np.zeros(k)
    base_weight = 0.0 if base_logits is None else 1.0 / base_temperature
    # A correction leaves classes without verified cells as the bundled model has them (else every absent class
    # would only ever be pushed down); a head from scratch has nothing to leave them to.
    present = (counts > 0).astype(np.float64) if base_logits is not None else np.ones(k)
    offset = 0.0 if base_logits is None else base_weight * base_logits
    m_w, v_w, m_b, v_b = (np.zeros_like(weights), np.zeros_like(weights), np.zeros_like(bias), np.zeros_like(bias))
    for step in range(1, steps + 1):
        logits = x @ weights + bias + offset
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        error = (probabilities - onehot) * sample_weight / n
        grad_w = (x.T @ error + l2 * weights) * present
        grad_b = error.sum(axis=0) * present
        for param, grad, m, v in ((weights, grad_w, m_w, v_w), (bias, grad_b, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad**2
            param -= learning_rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return Head(list(classes), mean, std, weights, bias, base_weight=base_weight)


@dataclass
class Profile:
    name: str
    base_model: dict  # name, version, sha256 of the model whose features the head reads
    head: Head
    validation: dict = field(default_factory=dict)
    created: str = ""
    cells: int = 0
    # a fine-tuned profile's own model: {"folder", "sha256", "dihedral", "robust_weight"} (else the base's)
    model: dict | None = None
    folder: Path | None = None  # where the profile was loaded from

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "base_model": self.base_model,
            "classes": self.head.classes,
            "mean": self.head.mean.tolist(),
            "std": self.head.std.tolist(),
            "weights": self.head.weights.tolist(),
            "bias": self.head.bias.tolist(),
            "temperature": self.head.temperature,
            "base_weight": self.head.base_weight,
            "validation": self.validation,
            "created": self.created or dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cells": self.cells,
        }
        if self.model is not None:
            data["model"] = self.model
        path = folder / PROFILE_FILE
        atomic_write_text(path, json.dumps(data) + "\n")
        return path


def pack_cells(path: Path, images: list[np.ndarray], labels: list[str]) -> None:
    """Store small RGB cells as JPEG bytes in one ``.npz`` (no pickles), written atomically."""
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=REPLAY_QUALITY)
        encoded.append(np.frombuffer(buffer.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    buffer = io.BytesIO()
    np.savez(buffer, jpeg=np.concatenate(encoded), offsets=offsets, labels=np.array(labels))
    atomic_write_bytes(path, buffer.getvalue())


def unpack_cells(path: Path) -> tuple[np.ndarray, list[str]]:
    """The cells and labels :func:`pack_cells` stored."""
    with np.load(path, allow_pickle=False) as data:
        jpeg, offsets, labels = data["jpeg"], data["offsets"], [str(n) for n in data["labels"]]
    images = [
        np.asarray(Image.open(io.BytesIO(jpeg[start:end].tobytes())).convert("RGB"))
        for start, end in itertools.pairwise(offsets)
    ]
    return np.stack(images), labels


def _model_reference(value) -> dict | None:
    """A fine-tuned profile's model entry, checked: a folder name inside the profile, a sha256, whether its
    calls average the 8 flips and turns of each cell, and the stain-robust model's share in its calls on cells
    that look foreign (``robust_weight``, 0 to 1; 0 for profiles made before it existed: the tuned model alone)."""
    if value is None:
        return None
    folder, digest = str(value["folder"]), str(value["sha256"]).lower()
    if Path(folder).name != folder or folder in ("", ".", ".."):
        raise ValueError("the profile's model must be a folder inside the profile")
    robust_weight = float(value.get("robust_weight", 0.0))
    if not 0.0 <= robust_weight <= 1.0:
        raise ValueError(f"the profile's robust_weight must lie between 0 and 1, not {robust_weight}")
    return {
        "folder": folder,
        "sha256": digest,
        "dihedral": bool(value.get("dihedral", False)),
        "robust_weight": robust_weight,
    }


def load_profile(folder: str | Path) -> Profile:
    path = Path(folder) / PROFILE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        head = Head(
            list(data["classes"]),
            np.asarray(data["mean"], np.float64),
            np.asarray(data["std"], np.float64),
            np.asarray(data["weights"], np.float64),
            np.asarray(data["bias"], np.float64),
            float(data.get("temperature", 1.0)),
            float(data.get("base_weight", 0.0)),
        )
        if head.weights.shape != (len(head.mean), len(head.classes)):
            raise ValueError("weights do not match the classes and features")
        arrays = (head.mean, head.std, head.weights, head.bias)
        if not all(np.isfinite(a).all() for a in arrays) or not (head.std > 0).all():
            raise ValueError("its statistics or weights are not finite numbers (or a spread is 0)")
        if not (np.isfinite(head.temperature) and 0 < head.temperature <= 10):
            raise ValueError(f"temperature must be above 0 and at most 10, not {head.temperature!r}")
        if not (np.isfinite(head.base_weight) and 0 <= head.base_weight <= 10):  # fitted: slightly above 1 is usual
            raise ValueError(f"base_weight must lie between 0 and 10, not {head.base_weight!r}")
        if len(set(head.classes)) != len(head.classes):
            raise ValueError(f"a class is named twice in {head.classes}")
        return Profile(
            str(data["name"]),
            dict(data["base_model"]),
            head,
            dict(data.get("validation", {})),
            str(data.get("created", "")),
            int(data.get("cells", 0)),
            model=_model_reference(data.get("model")),
            folder=Path(folder),
        )
    except FileNotFoundError:
        raise ProfileError(f"no lab profile in {folder} (expected {PROFILE_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ProfileError(f"lab profile {path} cannot be read: {error}") from None
    except RecursionError:
        raise ProfileError(f"lab profile {path} cannot be read: nested too deeply") from None
