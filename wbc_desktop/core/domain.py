"""How unlike the training data an image looks (out-of-domain score), from colour statistics and features.

Every lab stains and photographs differently; a model trained on one lab can be confidently wrong on another.
Two cheap signals are combined: the image's colour statistics (stain, white balance, camera) as a Mahalanobis
distance to the training images', and the model's pooled features as a standardised distance to the nearest
class centre. Each is divided by its 99th percentile on the validation split, so a score above 1 is unusual
and well above 1 is foreign. A batch is flagged when its median score passes a threshold set on validation
batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from wbc_desktop.core.canonical import channel_sum

OUT_OF_DOMAIN_MESSAGE = (
    "these images look unlike the data the model was trained on: check results, or adapt the model to your lab"
)
STATS_SIDE = 64
BATCH_SIZE = 20


def colour_statistics(rgb: np.ndarray, pil: Image.Image | None = None) -> np.ndarray:
    """8 numbers: mean and std of R, G, B (0..1) and mean of the r and g chromaticities, on a 64 px copy.
    ``pil``: the same pixels as a Pillow image, when the caller has one."""
    image = Image.fromarray(rgb) if pil is None else pil
    small = np.asarray(image.resize((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR), np.float64)
    pixels = small.reshape(-1, 3) / 255.0
    total = channel_sum(pixels)[:, None] + 1e-6  # sum(axis=1) with the same bits, a tenth of the time
    chroma = pixels / total
    return np.concatenate([pixels.mean(axis=0), pixels.std(axis=0), chroma[:, :2].mean(axis=0)])


@dataclass
class DomainModel:
    """Reference statistics of the training images; stored in the model manifest under ``domain``."""

    colour_mean: np.ndarray
    colour_inverse_covariance: np.ndarray
    feature_centres: np.ndarray  # one row per class
    feature_scale: np.ndarray  # per-dimension std of features around their class centre
    colour_p99: float = 1.0
    feature_p99: float = 1.0
    batch_threshold: float = 1.0

    @classmethod
    def fit(cls, colours: np.ndarray, features: np.ndarray, targets: np.ndarray, num_classes: int) -> DomainModel:
        mean = colours.mean(axis=0)
        covariance = np.cov(colours, rowvar=False) + np.eye(colours.shape[1]) * 1e-6
        centres = np.stack([features[targets == c].mean(axis=0) for c in range(num_classes)])
        residual = features - centres[targets]
        scale = residual.std(axis=0) + 1e-3
        return cls(mean, np.linalg.inv(covariance), centres, scale)

    def raw_distances(self, colours: np.ndarray, features: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        centred = colours - self.colour_mean
        colour = np.sqrt(np.einsum("ij,jk,ik->i", centred, self.colour_inverse_covariance, centred))
        if features is None:
            return colour, np.zeros_like(colour)
        scaled = (features[:, None, :] - self.feature_centres[None]) / self.feature_scale
        feature = np.sqrt((scaled**2).mean(axis=2)).min(axis=1)
        return colour, feature

    def calibrate(self, colours: np.ndarray, features: np.ndarray, batch_quantile: float = 0.99) -> None:
        """Set the percentiles and the batch threshold from validation images (in-domain by definition)."""
        colour, feature = self.raw_distances(colours, features)
        self.colour_p99 = float(np.percentile(colour, 99))
        self.feature_p99 = float(np.percentile(feature, 99))
        scores = self._combine(colour, feature if features is not None else None)
        rng = np.random.default_rng(0)
        size = min(BATCH_SIZE, len(scores))
        batch_scores = [batch_score(scores[rng.choice(len(scores), size, replace=False)]) for _ in range(2000)]
        # A margin over the highest validation batches: one odd image must not flag a batch of 20.
        self.batch_threshold = float(np.quantile(batch_scores, batch_quantile)) * 1.25

    def scores(self, colours: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        colour, feature = self.raw_distances(colours, features)
        return self._combine(colour, feature if features is not None else None)

    def _combine(self, colour: np.ndarray, feature: np.ndarray | None) -> np.ndarray:
        """Each distance over its validation 99th percentile; the image's score is the larger one."""
        score = colour / self.colour_p99
        if feature is not None:
            score = np.maximum(score, feature / self.feature_p99)
        return score

    def to_dict(self) -> dict:
        return {
            "colour_mean": self.colour_mean.tolist(),
            "colour_inverse_covariance": self.colour_inverse_covariance.tolist(),
            "feature_centres": np.round(self.feature_centres, 6).tolist(),
            "feature_scale": np.round(self.feature_scale, 6).tolist(),
            "colour_p99": self.colour_p99,
            "feature_p99": self.feature_p99,
            "batch_threshold": self.batch_threshold,
            "batch_size": BATCH_SIZE,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DomainModel:
        return cls(
            np.asarray(data["colour_mean"]),
            np.asarray(data["colour_inverse_covariance"]),
            np.asarray(data["feature_centres"]),
            np.asarray(data["feature_scale"]),
            float(data["colour_p99"]),
            float(data["feature_p99"]),
            float(data["batch_threshold"]),
        )


def batch_score(scores: Sequence[float] | np.ndarray) -> float:
    """The batch's score: the median image score (robust to one odd image)."""
    return float(np.median(np.asarray(scores))) if len(scores) else 0.0


def batch_flagged(scores: Sequence[float] | np.ndarray, threshold: float) -> bool:
    """The warning's rule, for the window, the CLI and the export alike: the batch score passes the threshold."""
    return batch_score(scores) > threshold


def batch_flags(scores: list[float], threshold: float | None, batch_size: int = BATCH_SIZE) -> dict:
    """The share of consecutive batches of ``batch_size`` images (in a seeded random order) the warning flags."""
    if not scores or threshold is None:
        return {"batches": 0}
    order = np.random.default_rng(0).permutation(len(scores))
    shuffled = np.asarray(scores)[order]
    batches = [shuffled[i : i + batch_size] for i in range(0, len(shuffled) - batch_size + 1, batch_size)]
    flagged = sum(batch_flagged(batch, threshold) for batch in batches)
    return {
        "batches": len(batches),
        "batch_size": batch_size,
        "flagged": int(flagged),
        "flagged_fraction": flagged / len(batches) if batches else 0.0,
        "median_score": float(np.median(scores)),
        "threshold": threshold,
    }
