"""One canonical view of a single cell, the same in training and in the app: framed on its nucleus, stain-normalised.

Labs differ in two ways a network trained on one lab cannot guess: how tightly a cell is framed (CellaVision
crops show the cell small among red cells, BCCD crops fill the frame with it) and the colour of the stain
(purple nuclei on beige in PBC, blue-violet on grey in BCCD). Both are removed before the network sees a pixel:

1. **Framing.** The nucleus is found by its purple excess (Otsu threshold per image), and a square of
   ``FRAME`` times its larger side, centred on it, is cut (padded with the image's background colour).
2. **Stain.** In optical density against the image's own white (99th percentile per channel), one factor
   moves the nuclear stain half way (in log density) to PBC's darkness, in proportion to each pixel's nuclear
   share (red cells and eosinophil granules keep theirs), and the result is drawn on PBC's background colour.

Pure NumPy + Pillow; about 5 ms per cell (scripts/fit_stain_reference.py measures the constants).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from wbc_desktop.core.fields import smoothed_excess
from wbc_desktop.core.images import resize_for_model
from wbc_desktop.core.masks import closed, label_components, otsu_threshold

FRAME = 1.6  # square side = this x the nucleus box's longer side (the cell and a little of its surroundings)
WORK_SIDE = 96  # nucleus search runs on a copy this size
MIN_NUCLEUS_FRACTION = 0.004  # of the working image; below that no nucleus was found: keep the whole image
REFERENCE_STRENGTH = 4.0  # median stain strength of framed PBC training cells (scripts/fit_stain_reference.py)
# Go half way (in log density) to the reference: measured with a 64 px probe model on BCCD crops, the full
# factor made blurred, faint nuclei too dark and uniform (lymphocytes called basophils): 0.65 full, 0.73 half.
NORMALISE_POWER = 0.5
NUCLEAR_RED_SHARE = (0.23, 0.31)  # red share of density: below the first eosin only, above the second nucleus
WHITE = np.array([255.0, 231.0, 204.0])  # background colour of the output (PBC's)


def nucleus_box(rgb: np.ndarray, pil: Image.Image | None = None) -> tuple[float, float, float, float] | None:
    """The central nucleus' box ``(x0, y0, x1, y1)`` in the image's pixels, or ``None`` if none stands out.
    ``pil`` (here and below): the same pixels as a Pillow image, when the caller has one."""
    scale = WORK_SIDE / max(rgb.shape[:2])
    excess = smoothed_excess(rgb, scale, pil)
    if float(excess.max() - excess.min()) < 20.0:
        return None
    labels, count = label_components(closed(excess > otsu_threshold(excess.ravel()), 5))
    best, best_score = None, 0.0
    half_diagonal = np.hypot(*labels.shape) / 2.0
    for index in range(1, count + 1):
        ys, xs = np.nonzero(labels == index)
        if len(xs) < MIN_NUCLEUS_FRACTION * labels.size:
            continue
        distance = np.hypot(xs.mean() - labels.shape[1] / 2.0, ys.mean() - labels.shape[0] / 2.0)
        score = len(xs) / (1.0 + (distance / (0.25 * half_diagonal)) ** 2)  # big and central: the cell of the crop
        if score > best_score:
            best, best_score = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), score
    if best is None:
        return None
    return tuple(float(v) / scale for v in best)  # type: ignore[return-value]


def frame_on_nucleus(rgb: np.ndarray, pil: Image.Image | None = None) -> np.ndarray:
    """A square crop of ``FRAME`` x the nucleus box, centred on it; the whole image if no nucleus is found."""
    height, width = rgb.shape[:2]
    box = nucleus_box(rgb, pil)
    if box is None:
        cx, cy, side = width / 2.0, height / 2.0, max(width, height)
    else:
        x0, y0, x1, y1 = box
        cx, cy, side = (x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0) * FRAME
    side = max(8, round(side))
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    sx0, sy0 = max(0, left), max(0, top)
    sx1, sy1 = min(width, left + side), min(height, top + side)
    if (sx0, sy0, sx1, sy1) == (left, top, left + side, top + side):
        return rgb[sy0:sy1, sx0:sx1].copy()  # inside the image (most cells): no padding, no background to estimate
    flat = rgb.reshape(-1, 3)
    brightness = flat.astype(np.int32).sum(axis=1)
    fill = np.median(flat[brightness >= np.percentile(brightness, 75)], axis=0).astype(np.uint8)  # background
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = fill
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = rgb[sy0:sy1, sx0:sx1]
    return out


def _percentile_of_bytes(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) of uint8 values, from their histogram: no sort."""
    cumulative = np.cumsum(np.bincount(values, minlength=256))
    position = q / 100.0 * (len(values) - 1)
    below, above = int(np.floor(position)), int(np.ceil(position))
    low, high = np.searchsorted(cumulative, [below + 1, above + 1])  # the value at each rank of the sorted list
    fraction, difference = position - below, float(high - low)
    # NumPy's own interpolation, to the last bit: from the nearer end
    return float(low + difference * fraction) if fraction < 0.5 else float(high - difference * (1.0 - fraction))


_CHANNELS = np.arange(3)


def channel_sum(values: np.ndarray) -> np.ndarray:
    """``values.sum(axis=1)`` of an ``(N, 3)`` array, the same bits (R + G then + B) at a tenth of the time:
    NumPy's reduction over a short last axis costs more than three whole-column additions."""
    return values[:, 0] + values[:, 1] + values[:, 2]


def optical_density(rgb: np.ndarray, white: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel optical density ``(N, 3)`` against ``white``, by default the image's own (99th percentile of
    each channel). uint8 images (every cell) take a table of 256 logarithms a channel instead of one a pixel."""
    data = rgb.reshape(-1, 3)
    if white is None:
        if data.dtype == np.uint8:
            white = np.array([max(_percentile_of_bytes(data[:, c], 99), 1.0) for c in range(3)])
        else:
            white = np.maximum(np.percentile(data.astype(np.float64), 99, axis=0), 1.0)
    if data.dtype == np.uint8:  # the same expression, once per byte value and channel, then looked up
        table = -np.log((np.arange(256.0)[:, None] + 1.0) / (np.asarray(white, dtype=np.float64) + 1.0))
        # row-major (value, channel) table: entry value * 3 + channel (a third cheaper than take_along_axis)
        density = table.ravel().take(data.astype(np.intp) * 3 + _CHANNELS)
    else:
        density = -np.log((data.astype(np.float64) + 1.0) / (white + 1.0))
    return np.clip(density, 0.0, None, out=density)


def nuclear_weight(density: np.ndarray, total: np.ndarray | None = None) -> np.ndarray:
    """Per pixel, 0..1: how much of its optical density is the nuclear (azure) stain, which absorbs red light.

    Eosin (red cells, eosinophil granules) absorbs green and blue but little red; the nuclear stain absorbs red
    and green. The red share of the density tells them apart in both labs. ``total`` is ``density.sum(1)`` when
    the caller has it.
    """
    total = channel_sum(density) if total is None else total
    red_share = density[:, 0] / np.maximum(total, 1e-6)
    return np.clip((red_share - NUCLEAR_RED_SHARE[0]) / (NUCLEAR_RED_SHARE[1] - NUCLEAR_RED_SHARE[0]), 0.0, 1.0)


def stain_strength(density: np.ndarray, weight: np.ndarray | None = None, total: np.ndarray | None = None) -> float:
    """How dark the nuclear stain is: the 95th percentile of total optical density over nucleus-like pixels
    (``weight`` and ``total`` when the caller has them)."""
    total = channel_sum(density) if total is None else total
    weight = nuclear_weight(density, total) if weight is None else weight
    nuclear = total[weight > 0.5]
    return float(np.percentile(nuclear if len(nuclear) >= 20 else total, 95))


def normalise_stain(rgb: np.ndarray) -> np.ndarray:
    """White-balance to the reference background and darken or lighten the nuclear stain towards the reference.

    The factor applies in proportion to each pixel's nuclear share, so a faint, bluish lab's nuclei get darker
    (half way to PBC's, ``NORMALISE_POWER``) while its red cells and eosinophil granules (eosin) keep their own
    density and hue; scaling everything alike had turned BCCD's red cells into eosinophil-like orange blobs.
    """
    density = optical_density(rgb)
    total = channel_sum(density)
    weight = nuclear_weight(density, total)  # once for the strength and the rescaling: it is a third of the cost
    strength = stain_strength(density, weight, total)
    if strength < 0.05:  # blank image: nothing to normalise
        return rgb
    scale = float(np.clip(REFERENCE_STRENGTH / strength, 0.25, 5.0)) ** NORMALISE_POWER
    return rescale_stains(density, 1.0, scale, rgb.shape, weight)


def rescale_stains(
    density: np.ndarray,
    eosin: float | np.ndarray,
    nuclear: float,
    shape: tuple[int, ...],
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``density`` on the reference background, each pixel's density multiplied by a factor between
    ``eosin`` and ``nuclear`` according to its nuclear share (normalisation here, stain jitter in training).
    ``eosin`` may be one factor per channel (R, G, B), which changes the eosin stain's hue too."""
    eosin = np.asarray(eosin, dtype=np.float64).reshape(1, -1)
    weight = nuclear_weight(density) if weight is None else weight
    factor = eosin + (nuclear - eosin) * weight[:, None]
    # WHITE * exp(-density * factor) in one array, in place: the same values without three temporary arrays
    out = density * factor
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.multiply(out, WHITE, out=out)
    return np.clip(out, 0, 255, out=out).astype(np.uint8).reshape(shape)


def framed_view(rgb: np.ndarray, size: int, pil: Image.Image | None = None) -> np.ndarray:
    """The cell framed on its nucleus and resized to ``size`` x ``size``, before stain normalisation."""
    return _resized(frame_on_nucleus(rgb, pil), size)


def _resized(framed: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(framed).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def canonical_cell(rgb: np.ndarray, size: int, pil: Image.Image | None = None) -> np.ndarray:
    """The model's view of a single-cell image: framed on the nucleus, resized to ``size``, stain-normalised."""
    return normalise_stain(framed_view(rgb, size, pil))


def canonical_of_frame(framed: np.ndarray, size: int) -> np.ndarray:
    """:func:`canonical_cell` of a cell already framed by :func:`frame_on_nucleus` (the same bits): framing is
    two thirds of the view's cost, and a foreign cell needs two views (the model's and the stain-robust one's)."""
    return normalise_stain(_resized(framed, size))


CANONICAL_REVISION = 2  # part of training caches' names: bump it whenever the canonical view's output changes
VIEWS = ("resize", "canonical")  # "resize": the whole image as it is (models before 2.0); "canonical": above


def model_view(rgb: np.ndarray, size: int, view: str = "resize", pil: Image.Image | None = None) -> np.ndarray:
    """What the model is fed for one RGB image, as named by its manifest's ``view``; training uses the same.
    ``pil``: the same pixels as a Pillow image, when the caller has one (saves a conversion)."""
    if view == "canonical":
        return canonical_cell(rgb, size, pil)
    if view == "resize":
        return resize_for_model(rgb, size)
    raise ValueError(f"unknown model view {view!r} (known: {', '.join(VIEWS)})")
