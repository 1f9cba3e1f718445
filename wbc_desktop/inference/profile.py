"""A lab profile's head over the bundled model's features, behind the same interface as the base classifier."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wbc_desktop.core.adapt import Profile, ProfileError, load_profile
from wbc_desktop.inference.base import softmax


class ProfileClassifier:
    """Base model features -> the lab's head -> calibrated probabilities."""

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
        self.base, self.profile = base, profile
        self.classes = tuple(profile.head.classes)
        self.name = f"{base.name}+{profile.name}"
        self.version = base.version
        self.sha256 = base.sha256
        self.review_threshold = base.review_threshold
        self.feature_size = base.feature_size

    def analyse(self, images: Sequence[np.ndarray]):
        _, features = self.base.logits_and_features(images)
        probabilities = softmax(self.profile.head.logits(features), self.profile.head.temperature)
        return probabilities, self.base.domain_scores(images, features)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.analyse(images)[0]


def load_with_profile(base, profile_dir: str | Path | None):
    """The base classifier, or the base wrapped in the lab profile found in ``profile_dir``."""
    return base if profile_dir is None else ProfileClassifier(base, load_profile(profile_dir))
