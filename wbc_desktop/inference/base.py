"""The classifier interface the pipeline, CLI and GUI program against (a fake satisfies it in tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from wbc_desktop.core.pipeline import ViewSpec

if TYPE_CHECKING:  # names in annotations only
    from wbc_desktop.core.domain import DomainModel
    from wbc_desktop.core.lab_profile import Profile


def identity_of(classifier) -> dict[str, str]:
    """The one way a model's identity is written down (cases, reports, profiles, the CLI's JSON)."""
    return {"name": classifier.name, "version": classifier.version, "sha256": classifier.sha256}


@runtime_checkable
class Classifier(Protocol):
    """Anything that turns RGB uint8 arrays into per-class probabilities: the LiteRT classifier, a lab profile
    over it, the test fake. Callers read these attributes directly (no probing)."""

    classes: tuple[str, ...]
    name: str
    version: str
    sha256: str
    review_threshold: float
    # What the pipeline prepares for each cell ahead of the model (core.pipeline.ViewSpec); None: the classifier
    # gets the decoded images through predict() and prepares them itself (test fakes, the Keras benchmark).
    view_spec: ViewSpec | None
    domain: DomainModel | None  # the training data's statistics for the out-of-domain score (None: no score)
    profile: Profile | None  # the lab profile making the calls (None: the bundled model's own)
    model_dir: Path | None  # the bundled model's folder (fine-tuning starts from its Keras file), if any
    has_robust_model: bool  # cells that look foreign are classified by the stain-robust model

    @property
    def identity(self) -> dict[str, str]:
        """``{"name", "version", "sha256"}``: what a case, a report and a profile record of the model."""
        ...

    @property
    def base(self) -> Classifier:
        """The bundled model's classifier (itself, or the one a lab profile reads features from)."""
        ...

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, len(classes))`` calibrated probabilities for N RGB uint8 images of any size."""
        ...


@runtime_checkable
class PreparedClassifier(Classifier, Protocol):
    """A classifier whose cells the pipeline prepares in parallel (``view_spec`` is set)."""

    def analyse_prepared(
        self,
        images: Sequence[np.ndarray],
        views: np.ndarray,
        colours: np.ndarray | None,
        frames: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and out-of-domain scores (or None) for cells whose model views (uint8, ``view_spec``)
        and colour statistics were prepared by the pipeline; ``images`` are the cells' pixels, ``frames`` (the
        canonical view only) the cells framed on their nucleus, from which the view was made."""
        ...


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax of ``logits / temperature`` along the last axis."""
    scaled = np.asarray(logits, dtype=np.float64) / float(temperature)
    scaled -= scaled.max(axis=-1, keepdims=True)
    exps = np.exp(scaled)
    return exps / exps.sum(axis=-1, keepdims=True)


DIHEDRAL_VIEWS = 8  # a cell has no up, down, left or right: 4 turns x mirror give 8 equally valid views


def dihedral_views(batch: np.ndarray, count: int = DIHEDRAL_VIEWS) -> np.ndarray:
    """The first ``count`` of the 8 flips and transposes of a ``(N, H, W, C)`` square batch, view-major:
    ``(count * N, H, W, C)``. The order (as is, upside down, mirrored, half-turned, then their transposes) is
    the one the stain-robust ensemble's graph and a manifest's ``test_time_views`` count in."""
    views = [batch, batch[:, ::-1], batch[:, :, ::-1], batch[:, ::-1, ::-1]]
    views += [view.transpose(0, 2, 1, 3) for view in views]
    return np.ascontiguousarray(np.concatenate(views[:count]))


def mean_over_views(outputs: np.ndarray, count: int, views: int = DIHEDRAL_VIEWS) -> np.ndarray:
    """Average view-major outputs of :func:`dihedral_views` back to one row per image."""
    return outputs.reshape(views, count, *outputs.shape[1:]).mean(axis=0)
