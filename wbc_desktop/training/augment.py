"""Cheap augmentation on cached uint8 arrays (NumPy), suited to blood cells.

Cells have no up or down, so flips and 90-degree turns are free label-preserving variety; stains and cameras
differ between labs, so brightness, contrast, saturation and per-channel (stain) gains are jittered too.
Keras' random layers would halve training throughput on a 2-core CPU; this costs a few ms per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColourJitter:
    brightness: float = 0.10  # multiplicative, +-
    contrast: float = 0.15
    saturation: float = 0.20
    channel_gain: float = 0.06  # per-channel gain, a crude stain shift


def augment_batch(images: np.ndarray, rng: np.random.Generator, jitter: ColourJitter = ColourJitter()) -> np.ndarray:
    """Return an augmented float32 copy (0..255) of a ``(N, H, W, 3)`` uint8 batch."""
    count = images.shape[0]
    out = np.empty(images.shape, dtype=np.float32)
    for i in range(count):
        image = images[i]
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image = np.rot90(image, k=int(rng.integers(4)))
        out[i] = image
    shape = (count, 1, 1, 1)
    grey = out.mean(axis=3, keepdims=True)
    saturation = 1.0 + rng.uniform(-jitter.saturation, jitter.saturation, shape).astype(np.float32)
    out = grey + (out - grey) * saturation
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    contrast = 1.0 + rng.uniform(-jitter.contrast, jitter.contrast, shape).astype(np.float32)
    out = mean + (out - mean) * contrast
    gain = 1.0 + rng.uniform(-jitter.brightness, jitter.brightness, shape).astype(np.float32)
    gain = gain * (1.0 + rng.uniform(-jitter.channel_gain, jitter.channel_gain, (count, 1, 1, 3))).astype(np.float32)
    out *= gain
    np.clip(out, 0.0, 255.0, out=out)
    return out
