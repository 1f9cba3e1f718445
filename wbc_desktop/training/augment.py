"""Cheap augmentation on cached uint8 arrays (NumPy), suited to blood cells.

Cells have no up or down, so flips and 90-degree turns are free label-preserving variety; stains and cameras
differ between labs, so brightness, contrast, saturation and per-channel (stain) gains are jittered too.
Keras' random layers would halve training throughput on a 2-core CPU; this costs a few ms per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wbc_desktop.core.canonical import WHITE, optical_density, rescale_stains


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


def _hue_rotation(angle: float) -> np.ndarray:
    """RGB matrix rotating hue by ``angle`` radians around the grey axis (keeps luminance roughly)."""
    cos, sin = np.cos(angle), np.sin(angle)
    third, root = 1.0 / 3.0, np.sqrt(1.0 / 3.0)
    return np.array(
        [
            [cos + (1 - cos) * third, third * (1 - cos) - root * sin, third * (1 - cos) + root * sin],
            [third * (1 - cos) + root * sin, cos + third * (1 - cos), third * (1 - cos) - root * sin],
            [third * (1 - cos) - root * sin, third * (1 - cos) + root * sin, cos + third * (1 - cos)],
        ],
        dtype=np.float32,
    )


def augment_batch_strong(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Other labs: zoom (cells framed tighter or looser), hue/stain, gamma, grey and blur on top of the cheap set.

    Measured to choose between this and :func:`augment_batch` (see docs/figures.md, *Other labs*).
    """
    from PIL import Image, ImageFilter

    size = images.shape[1]
    zoomed = np.empty_like(images)
    for i, image in enumerate(images):
        fraction = rng.uniform(0.45, 1.0)  # BCCD crops frame the cell about twice as tight as PBC
        side = max(8, int(size * fraction))
        # the cell stays centred (as in both labs' crops): only a small shift around the middle
        shift = int(size * 0.08)
        x0 = int(np.clip((size - side) // 2 + rng.integers(-shift, shift + 1), 0, size - side))
        y0 = int(np.clip((size - side) // 2 + rng.integers(-shift, shift + 1), 0, size - side))
        picture = Image.fromarray(image[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.Resampling.BILINEAR)
        if rng.random() < 0.25:
            picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        zoomed[i] = np.asarray(picture)
    out = augment_batch(zoomed, rng, ColourJitter(brightness=0.2, contrast=0.3, saturation=0.4, channel_gain=0.12))
    for i in range(len(out)):
        out[i] = out[i] @ _hue_rotation(rng.uniform(-0.35, 0.35)).T
        gamma = rng.uniform(0.7, 1.4, 3).astype(np.float32)
        out[i] = 255.0 * np.power(np.clip(out[i], 0, 255) / 255.0, gamma)
        if rng.random() < 0.1:
            out[i] = out[i].mean(axis=2, keepdims=True)
    np.clip(out, 0.0, 255.0, out=out)
    return out


def stain_jitter(image: np.ndarray, rng: np.random.Generator, eosin_hue: float = 0.0) -> np.ndarray:
    """Scale the eosin and the nuclear stain's optical density independently (stain-space jitter, like HED jitter
    for H&E), on a canonical view drawn on the reference background. ``eosin_hue`` > 0 also varies the eosin
    factor per channel by up to that fraction, so pale cytoplasm and granules take other labs' hues (salmon,
    orange, lilac), not only other strengths."""
    eosin, nuclear = rng.uniform(0.45, 1.25), rng.uniform(0.8, 1.2)
    if eosin_hue:
        eosin = eosin * (1.0 + rng.uniform(-eosin_hue, eosin_hue, 3))
    return rescale_stains(optical_density(image, WHITE), eosin, nuclear, image.shape)


def augment_batch_labs(images: np.ndarray, rng: np.random.Generator, eosin_hue: float = 0.0) -> np.ndarray:
    """For cells already framed and stain-normalised (:mod:`wbc_desktop.core.canonical`): what that leaves.

    Framing errors (a little zoom and shift), other cameras (blur, lower resolution upsampled, as BCCD's crops
    cut from 640x480 fields) and the stain differences normalisation cannot remove: how much eosin a lab uses
    (normalisation leaves it alone, so eosinophil granules may be paler than PBC's), then hue, gamma, saturation.
    """
    from PIL import Image, ImageFilter

    size = images.shape[1]
    varied = np.empty_like(images)
    for i, image in enumerate(images):
        fraction = rng.uniform(0.8, 1.0)
        side = max(8, int(size * fraction))
        x0, y0 = (int(rng.integers(0, size - side + 1)) for _ in range(2))
        picture = Image.fromarray(image[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            low = max(8, int(size * rng.uniform(0.3, 0.7)))
            picture = picture.resize((low, low), Image.Resampling.BILINEAR)
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2) * size / 128))
        varied[i] = stain_jitter(np.asarray(picture), rng, eosin_hue)
    out = augment_batch(varied, rng, ColourJitter(brightness=0.15, contrast=0.25, saturation=0.35, channel_gain=0.1))
    for i in range(len(out)):
        out[i] = out[i] @ _hue_rotation(rng.uniform(-0.2, 0.2)).T
        gamma = rng.uniform(0.8, 1.25, 3).astype(np.float32)
        out[i] = 255.0 * np.power(np.clip(out[i], 0, 255) / 255.0, gamma)
    np.clip(out, 0.0, 255.0, out=out)
    return out


def augment_batch_labs_hue(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`augment_batch_labs` with the eosin stain's hue varied too (members of the stain-robust model)."""
    return augment_batch_labs(images, rng, eosin_hue=0.3)
