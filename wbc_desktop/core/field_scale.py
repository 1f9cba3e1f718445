"""The red cells as a ruler: how many pixels one red cell spans in a smear field (NumPy + Pillow).

Red cells are about 7.5 um across in every lab and fill every smear field, so their apparent diameter tells the
finder the magnification without a calibration slide. The measure: the cells (everything darker than the
background, split from it by Otsu on the background-normalised optical density) are cut by every row and column
of the image into chords; the length-weighted mode of the chords' log-lengths is the red-cell diameter (a chord
through a disc is at most its diameter and, weighted by length, most often close to it; clumps make longer chords
but fewer of them, pale centres and debris shorter ones that weigh little). It is measured again at a resolution
where a red cell is ``RULER_DIAMETER`` px, so that the blur and the pale centres look the same whatever the
magnification (measured on rescaled and tiled BCCD fields: docs/figures.md, *Fields at any magnification*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from wbc_desktop.core.masks import component_boxes, label_components, otsu_threshold

RBC_DIAMETER_UM = 7.5  # a normal red cell; the ruler's unit
RULER_DIAMETER = 16.0  # px: the second measure runs where a red cell is this wide
MIN_CELL_SHARE = 0.04  # below this share of the image darker than the background there are no red cells to see
MAX_CELL_SHARE = 0.92  # above it there is no background between cells: a single-cell crop or a thick area
MIN_CHORDS = 40
NO_BACKGROUND = "no background between the cells (a single-cell crop, or a thick part of the smear)"
MIN_CONTRAST = 0.12  # optical density (sum of the channels) between cells and background; below: a blank image
# Out of focus: cell edges wider than this share of a red cell, or than this many pixels whatever the measured size
# (blur inflates the measure too). BCCD fields: 3.6-7.3 px, 0.04-0.08 of a red cell; blurred by a Gaussian of 8 px:
# 10-16 px; of 16 px: 14-23 px; BCCD tiled at 0.35 magnification: 2.4-2.8 px.
MAX_EDGE_WIDTH = 0.11
MAX_EDGE_PX = 12.0
# What a perfectly sharp edge reads (central differences at half resolution: a step rises over two half-resolution
# pixels, 4 px): a red cell of 30 px (a 0.35x objective) would otherwise be called blurred at 3.3 px, sharp or not.
SHARPEST_EDGE_PX = 4.0
# The coarse measure (a red cell 16 px) is kept only within this factor of the full-resolution one: on pale, large
# red cells touching a white cell it read twice the size (BCCD even fields at 1.0: within 15 % of the median size
# 0.852 -> 0.885, unchanged at 0.7 and 0.35; chosen among 1.4 with and without flat-field correction).
MAX_DISAGREEMENT = 1.4


@dataclass(frozen=True)
class FieldScale:
    """``px_per_rbc``: the red-cell diameter in the field's pixels, or None with ``problem`` saying why not."""

    px_per_rbc: float | None
    problem: str | None = None
    source: str = "measured"  # or "setting" (the lab's um per pixel)
    edge_width: float | None = None  # px: how soft the cells' edges are (contrast over the 99th pct gradient)


def background_normalised(rgb: np.ndarray) -> np.ndarray:
    """float32 RGB with the field's background (its 97th percentile per channel) mapped to 230: a camera's white
    balance and exposure cancel out."""
    data = rgb.astype(np.float32)
    background = np.percentile(data.reshape(-1, 3)[:: max(1, data.size // 3 // 200_000)], 97, axis=0)
    return np.clip(data * (230.0 / np.maximum(background, 1.0)), 0.0, 255.0)


def optical_density(normalised: np.ndarray) -> np.ndarray:
    """Sum over the channels of -log(I / background) for a background-normalised image: 0 on background."""
    return -np.log(np.clip((normalised + 1.0) / 231.0, 1e-3, 1.0)).sum(axis=2)


def chord_lengths(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True along every row and every column, leaving out runs cut by the image edge."""
    lengths = []
    for grid in (mask, mask.T):
        padded = np.zeros((grid.shape[0], grid.shape[1] + 2), dtype=np.int8)
        padded[:, 1:-1] = grid
        steps = np.diff(padded, axis=1)
        starts = np.nonzero(steps == 1)[1]
        ends = np.nonzero(steps == -1)[1]
        inside = (starts > 0) & (ends < grid.shape[1])
        lengths.append((ends - starts)[inside])
    return np.concatenate(lengths)


def with_pale_centres_filled(mask: np.ndarray, largest: float) -> np.ndarray:
    """``mask`` with its round holes (background not connected to the image edge, filling at least 60 % of its
    bounding box) of fewer than ``largest`` px filled: red cells' pale centres, not the angular gaps between
    packed cells (filling those merged cells into clumps)."""
    labels, count = label_components(~mask)
    areas, low_x, low_y, high_x, high_y = component_boxes(labels, count)
    box_w, box_h = high_x - low_x + 1, high_y - low_y + 1
    round_enough = (areas >= 0.6 * box_w * box_h) & (np.maximum(box_w, box_h) <= 1.8 * np.minimum(box_w, box_h))
    fill = (areas < largest) & round_enough
    fill[0] = False
    fill[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = False
    return mask | fill[labels]


def dominant_length(lengths: np.ndarray, bandwidth: float = 0.15) -> float:
    """Mode of the length-weighted density of log-lengths (Gaussian kernel of ``bandwidth`` in log units), on a
    histogram of 1/20 of the bandwidth (a kernel per chord cost 45 ms a field)."""
    logs = np.log(lengths.astype(np.float64))
    step = bandwidth / 20.0
    low = logs.min() - 4 * bandwidth
    bins = int(np.ceil((logs.max() + 4 * bandwidth - low) / step)) + 1
    histogram = np.bincount(((logs - low) / step).astype(np.int64), weights=lengths.astype(np.float64), minlength=bins)
    offsets = np.arange(-80, 81) * step
    density = np.convolve(histogram, np.exp(-0.5 * (offsets / bandwidth) ** 2), mode="same")
    return float(np.exp(low + (int(np.argmax(density)) + 0.5) * step))


def purple_excess(rgb: np.ndarray) -> np.ndarray:
    """B - (R + G) / 2 as float32: high on stained nuclei, near zero or negative elsewhere."""
    data = rgb.astype(np.float32)
    return data[..., 2] - (data[..., 0] + data[..., 1]) / 2.0


def cell_mask(density: np.ndarray, excess: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Pixels darker than the background (the red cells, and the white cells among them), and the optical-density
    cut-off that split them off: Otsu's. A strong nuclear stain can pull that split between the nuclei and the
    rest (few pixels left, or, with the field's purple ``excess``, pixels as purple as its strongest stain); then
    it is taken on the density clipped to its 85th percentile, where the nuclei join the cells."""
    threshold = otsu_threshold(density, bins=256)
    cells = density > threshold
    if cells.mean() < MIN_CELL_SHARE or (excess is not None and _split_took_nuclei(cells, excess)):
        threshold = otsu_threshold(np.minimum(density, np.percentile(density, 85)), bins=256)
        cells = density > threshold
    return cells, threshold


def _split_took_nuclei(cells: np.ndarray, excess: np.ndarray) -> bool:
    """Whether the split-off pixels' purple excess lies nearer the field's strongest stain (99.5th percentile)
    than its middle (median): red cells sit near the middle in every stain measured, nuclei near the top."""
    if cells.sum() <= 100:
        return False
    top = float(np.percentile(excess, 99.5))
    return float(np.median(excess[cells])) > (float(np.median(excess)) + top) / 2.0


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-3:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _measure_at(rgb: np.ndarray, scale: float) -> tuple[float | None, str | None, np.ndarray, np.ndarray]:
    normalised = background_normalised(_resized(rgb, scale))
    density = optical_density(normalised)
    cells, threshold = cell_mask(density, purple_excess(normalised))
    share = float(cells.mean())
    if threshold < MIN_CONTRAST or share < MIN_CELL_SHARE:
        return None, "no red cells to measure the magnification by (a blank image?)", density, cells
    if share > MAX_CELL_SHARE:
        return None, NO_BACKGROUND, density, cells
    lengths = chord_lengths(cells)
    lengths = lengths[lengths >= 2]
    if len(lengths) < MIN_CHORDS:
        return None, "too few red cells to measure the magnification by", density, cells
    diameter = dominant_length(lengths)
    for _ in range(2):  # pale centres cut a red cell's chords in two: fill holes smaller than a red cell, measure again
        lengths = chord_lengths(with_pale_centres_filled(cells, diameter * diameter))
        diameter = dominant_length(lengths[lengths >= 2])
    return diameter / scale, None, density, cells


def edge_width(density: np.ndarray, cells: np.ndarray) -> float:
    """How many pixels a cell's edge takes to rise to the cells' contrast: their median optical density above the
    background's over the 99th percentile of the gradient, taken at half resolution so that JPEG noise does not
    pass for an edge (a few px in focus, tens out of focus)."""
    if cells.all() or not cells.any():
        return float("inf")
    height, width = density.shape
    half = Image.fromarray(density.astype(np.float32)).resize(
        (max(1, width // 2), max(1, height // 2)), Image.Resampling.BOX
    )
    gy, gx = np.gradient(np.asarray(half))
    contrast = float(np.median(density[cells]) - np.median(density[~cells]))
    return 2.0 * contrast / max(float(np.percentile(np.hypot(gx, gy), 99)), 1e-6)


def measure_scale(rgb: np.ndarray) -> FieldScale:
    """The red-cell diameter in pixels, measured twice: at full resolution, then where a red cell is 16 px."""
    first, problem, full_density, full_cells = _measure_at(rgb, 1.0)
    if first is None:
        return FieldScale(None, problem)
    diameter = first
    scale = 1.0
    for _ in range(2):
        scale = min(1.0, RULER_DIAMETER / diameter)
        measured, problem, _, _ = _measure_at(rgb, scale)
        if measured is None:
            return FieldScale(None, problem)
        if not 1.0 / MAX_DISAGREEMENT <= measured / first <= MAX_DISAGREEMENT:
            break  # cells merged at the coarse resolution (a white cell among touching red ones): keep the finer
        diameter = measured
    # Touching and overlapping red cells can only lengthen chords, and they merge more at the coarse resolution:
    # of two measures that agree this far, the smaller is the truer (BCCD even fields within 15 % of their median:
    # 0.885 -> 0.918 at 1.0, 0.890 -> 0.929 at 0.7, 0.923 -> 0.967 at 0.5, 0.973 -> 0.984 at 0.35)
    diameter = min(diameter, first)
    width = edge_width(full_density, full_cells)
    if width > max(MAX_EDGE_WIDTH * diameter, SHARPEST_EDGE_PX) or width > MAX_EDGE_PX:
        problem = f"too blurred to find white cells in (cell edges {width:.0f} px wide, red cells {diameter:.0f} px)"
        return FieldScale(None, problem, edge_width=width)
    return FieldScale(diameter, edge_width=width)


def scale_from_setting(um_per_px: float) -> FieldScale:
    """The lab's own calibration (Settings or ``--um-per-px``) instead of the measure."""
    if not um_per_px > 0:
        raise ValueError("micrometres per pixel must be a positive number")
    return FieldScale(RBC_DIAMETER_UM / um_per_px, source="setting")
