"""A lab profile's head over the bundled model's features, behind the same interface as the base classifier."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from wbc_desktop.core.images import ImageLoadError, load_image
from wbc_desktop.core.lab_profile import Profile, ProfileError, fit_head, load_profile
from wbc_desktop.core.labelled import stratified_split
from wbc_desktop.core.metrics import evaluation_summary, fit_temperature
from wbc_desktop.inference.base import identity_of, softmax
from wbc_desktop.inference.litert import LiteRTClassifier
from wbc_desktop.inference.manifest import ModelError


class ProfileClassifier:
    """Base model features -> the lab's head -> calibrated probabilities.

    A fine-tuned profile's own model makes the calls; on cells that look foreign they are averaged with the
    stain-robust model's by the profile's ``robust_weight``. The out-of-domain score still comes from the base
    model, whose training data it describes (one more pass per batch)."""

    def __init__(self, base, profile: Profile):
        if base.feature_size is None:
            raise ProfileError("the bundled model does not expose features; lab profiles need a newer model")
        if profile.base_model.get("sha256") != base.sha256:
            raise ProfileError(
                f"lab profile '{profile.name}' was fitted on another model ({profile.base_model.get('name')} "
                f"{profile.base_model.get('version')}); adapt again with this model"
            )
        if len(profile.head.mean) != base.feature_size:
            raise ProfileError("lab profile does not match the model's feature size")
        if tuple(profile.head.classes) != tuple(base.classes):
            # the head's columns are read as the model's classes (and blended with its logits): same order only
            raise ProfileError(
                f"lab profile '{profile.name}' lists classes {list(profile.head.classes)}, not the model's "
                f"{list(base.classes)} in that order; adapt again with this model"
            )
        self.base, self.profile = base, profile
        self.tuned = _tuned_model(profile, base) if profile.model is not None else None
        self.classes = tuple(profile.head.classes)
        self.name = f"{base.name}+{profile.name}"
        self.version = base.version
        self.sha256 = base.sha256
        self.review_threshold = base.review_threshold
        self.feature_size = base.feature_size
        self.domain = base.domain  # the out-of-domain statistics belong to the features, i.e. the base model
        self.model_dir = base.model_dir
        self.has_robust_model = base.has_robust_model

    @property
    def identity(self) -> dict[str, str]:
        return identity_of(self)

    @property
    def view_spec(self):
        return self.base.view_spec  # a tuned model reads the base model's view (checked on loading)

    def analyse(self, images: Sequence[np.ndarray]):
        if len(images) == 0:
            return np.zeros((0, len(self.classes))), None
        frames = self.base.frames_of(images)
        return self.analyse_prepared(images, self.base.prepare(images, frames), None, frames)

    def analyse_prepared(
        self,
        images: Sequence[np.ndarray],
        views: np.ndarray,
        colours: np.ndarray | None,
        frames: Sequence[np.ndarray] | None = None,
    ):
        """Calls for cells whose view the pipeline prepared: both models read the same view of each cell."""
        if len(images) == 0:
            return np.zeros((0, len(self.classes))), None
        batch = views.astype(np.float32)
        if self.tuned is None:
            logits, features = self.base.outputs_of(batch)
            domain = self.base.domain_scores(images, features, colours)
        else:
            app_probabilities, domain = self.base.analyse_batch(images, batch, colours, frames)
            logits, features = self.tuned.outputs_of(batch, dihedral=self.profile.model["dihedral"])
        probabilities = softmax(self.profile.head.logits(features, logits), self.profile.head.temperature)
        if self.tuned is not None:
            probabilities = blend_with_robust(
                probabilities, app_probabilities, self.base.routed(domain), self.profile.model["robust_weight"]
            )
        return probabilities, domain

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.analyse(images)[0]


def blend_with_robust(tuned: np.ndarray, app: np.ndarray, foreign: np.ndarray, robust_weight: float) -> np.ndarray:
    """A fine-tuned profile's calls: its model's probabilities, averaged on the ``foreign`` cells with the app's
    own calls there, which are the stain-robust model's.

    Two models that err differently: on BCCD crops (all foreign), averaging a profile tuned on 50 cells with
    the stain-robust calls was right more often in 9 of 12 splits (0.849 against 0.843, docs/figures.md). On
    cells that look like the training data the app's calls are the bundled model's, which the profile was
    tuned to correct, so they are left to the tuned model."""
    blended = np.array(tuned, copy=True)
    rows = np.flatnonzero(foreign) if robust_weight > 0.0 else []
    blended[rows] = (1.0 - robust_weight) * tuned[rows] + robust_weight * app[rows]
    return blended


def _tuned_model(profile: Profile, base):
    """A fine-tuned profile's LiteRT model, checked against the hash the profile recorded for it."""
    folder = profile.folder / profile.model["folder"]
    try:
        tuned = LiteRTClassifier(folder)
    except ModelError as error:
        raise ProfileError(f"lab profile '{profile.name}': its fine-tuned model cannot be used: {error}") from None
    if tuned.sha256 != profile.model["sha256"]:
        raise ProfileError(f"lab profile '{profile.name}': its fine-tuned model is not the one it was made with")
    if tuned.classes != base.classes:
        raise ProfileError(f"lab profile '{profile.name}': its fine-tuned model has other classes than the model")
    if (tuned.manifest.input_size, tuned.manifest.view) != (base.manifest.input_size, base.manifest.view):
        raise ProfileError(f"lab profile '{profile.name}': its fine-tuned model reads cells unlike the model")
    return tuned


def load_with_profile(base, profile_dir: str | Path | None):
    """The base classifier, or the base wrapped in the lab profile found in ``profile_dir``."""
    return base if profile_dir is None else ProfileClassifier(base, load_profile(profile_dir))


def _readable_batches(
    paths: Sequence[Path], batch: int, on_progress: Callable[[int, int], None] | None = None
) -> Iterator[tuple[list[np.ndarray], list[int]]]:
    """The readable images among ``paths``, ``batch`` paths at a time, with their indices (unreadable files are
    skipped; a batch with none readable is not yielded). ``on_progress(done, total)`` follows each batch."""
    for start in range(0, len(paths), batch):
        images, indices = [], []
        for index in range(start, min(start + batch, len(paths))):
            try:
                images.append(load_image(paths[index]))
                indices.append(index)
            except ImageLoadError:
                continue
        if images:
            yield images, indices
        if on_progress is not None:
            on_progress(min(start + batch, len(paths)), len(paths))


def read_outputs(
    base, paths: Sequence[Path], batch: int = 16, on_progress=None
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The bundled model's raw logits and pooled features of each readable image, and the indices of those."""
    logits, features, kept = [], [], []
    for images, indices in _readable_batches(paths, batch, on_progress):
        batch_logits, batch_features = base.logits_and_features(images)
        logits.append(batch_logits)
        features.append(batch_features)
        kept.extend(indices)
    if not features:
        return np.zeros((0, len(base.classes))), np.zeros((0, base.feature_size or 0)), kept
    return np.concatenate(logits), np.concatenate(features), kept


MIN_CELLS_TO_COMPARE = 20  # fewer held-back cells cannot tell a profile from the model without one


def app_calls(base, paths: Sequence[Path], batch: int = 16) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The app's own probabilities without a profile for each readable image, which of them the stain-robust
    model made (cells that look foreign), and the indices of those images."""
    probabilities, foreign, kept = [], [], []
    for images, indices in _readable_batches(paths, batch):
        batch_probabilities, scores = base.analyse(images)
        probabilities.append(batch_probabilities)
        foreign.append(base.routed(scores) if scores is not None else np.zeros(len(images), dtype=bool))
        kept.extend(indices)
    if not probabilities:
        return np.zeros((0, len(base.classes))), np.zeros(0, dtype=bool), kept
    return np.concatenate(probabilities), np.concatenate(foreign), kept


def app_accuracy(base, paths: Sequence[Path], labels: Sequence[str], batch: int = 16) -> float | None:
    """Accuracy of the app without a profile on these cells (None when no cell can be read)."""
    probabilities, _, kept = app_calls(base, paths, batch)
    if not kept:
        return None
    return float(
        np.mean([base.classes[i] == labels[k] for i, k in zip(probabilities.argmax(axis=1), kept, strict=True)])
    )


def profile_is_worse(validation: dict) -> bool:
    """A profile that did worse than the app without one on enough held-back cells should not be put in use."""
    bundled = validation.get("bundled_accuracy")
    return (
        bundled is not None
        and validation.get("cells_held_back", 0) >= MIN_CELLS_TO_COMPARE
        and validation.get("accuracy", 1.0) < bundled
    )


def held_back_report(
    logits: np.ndarray,
    targets: np.ndarray,
    classes: list[str],
    validation: dict,
    blend: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """Record a profile's accuracy on its held-back cells in ``validation``; returns the temperature fitted on
    them (1.0 for fewer than 20 cells, too few to fit it). ``blend`` turns the tuned model's probabilities into
    the profile's calls (:func:`blend_with_robust`), as the profile will make them."""
    temperature = fit_temperature(logits, targets) if len(targets) >= 20 else 1.0
    probabilities = softmax(logits, temperature)
    if blend is not None:
        validation["tuned_model_accuracy"] = float(np.mean(probabilities.argmax(axis=1) == targets))
        probabilities = blend(probabilities)
    report = evaluation_summary(probabilities, targets, classes)
    validation.update(
        accuracy=report["accuracy"],
        macro_f1=report["macro"]["f1"],
        temperature=temperature,
        confusion_matrix=report["confusion_matrix"],
        per_class=report["per_class"],
    )
    return temperature


def build_profile(
    base,
    paths: Sequence[Path],
    labels: Sequence[str],
    name: str,
    holdout: float = 0.2,
    seed: int = 0,
    on_progress=None,
    from_scratch: bool = False,
) -> Profile:
    """Fit a lab profile on verified cells: a head on (1 - holdout) of them, reported on the held-back rest,
    then the head that is used refitted on all of them. Raises :class:`ProfileError` when it cannot."""
    classes = list(base.classes)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ProfileError(f"classes {unknown} are not among the model's classes {classes}")
    base_logits, features, kept = read_outputs(base, paths, on_progress=on_progress)
    targets = np.array([classes.index(labels[i]) for i in kept])
    if len(targets) < 5:
        raise ProfileError("at least 5 readable verified cells are needed to adapt the model")

    def prior(rows) -> dict:  # the bundled model as the starting point, unless a head from scratch is asked for
        return {} if from_scratch else {"base_logits": base_logits[rows], "base_temperature": base.temperature}

    splits = np.array(stratified_split([classes[t] for t in targets], holdout, 0.0, seed))
    train, held = splits == "train", splits == "test"
    validation: dict = {
        "head": "scratch" if from_scratch else "correction",
        "cells_fitted": int(train.sum()),
        "cells_held_back": int(held.sum()),
    }
    temperature = 1.0
    if held.any():
        head = fit_head(features[train], targets[train], classes, **prior(train))
        temperature = held_back_report(
            head.logits(features[held], base_logits[held]), targets[held], classes, validation
        )
        held_rows = np.flatnonzero(held)
        validation["bundled_accuracy"] = app_accuracy(
            base, [paths[kept[i]] for i in held_rows], [classes[targets[i]] for i in held_rows]
        )
    final = fit_head(features, targets, classes, **prior(slice(None)))
    final.temperature = temperature
    base_info = base.identity
    return Profile(name, base_info, final, validation, cells=len(targets))
