"""Find white blood cells in a smear field (NumPy + Pillow, no detector network), at any magnification and stain.

WBC nuclei are stained purple-blue by Romanowsky stains: their blue channel is far above the mean of red and
green, while red cells (pink-red) and background (pale) sit near or below it. Thresholding that "purple excess",
closing the mask so the lobes of one nucleus merge, and keeping components of nucleus size gives one box per
WBC; the box is grown from the nucleus to the whole cell and a square crop centred on it is cut for the
classifier, comparable to the training crops (a cell centred in its surroundings).

Nothing here is in pixels of a particular camera or a particular stain: the red cells are the ruler
(:mod:`wbc_desktop.core.field_scale`): every size is in red-cell diameters and the field is analysed at a
resolution where a red cell is ``WORK_RBC`` px; the background is mapped to one grey (white balance cancels) and
the purple-excess cut-off is set from the field's own red cells and its strongest stain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from wbc_desktop.core.field_scale import (
    FieldScale,
    background_normalised,
    cell_mask,
    measure_scale,
    optical_density,
    purple_excess,
)
from wbc_desktop.core.masks import closed, component_boxes, label_components

WORK_RBC = 44.0  # px: the finder works where a red cell is this wide (BCCD's fields at the old 320 px working side)
MAX_WORK_SIDE = 1600  # a very high magnification is worked at this longest side at most


@dataclass(frozen=True)
class Detection:
    """A WBC found in a field: box ``[x0, y0, x1, y1]`` in the field's pixels and a score in 0..1."""

    box: tuple[int, int, int, int]
    score: float
    nucleus_area: float  # fraction of the field covered by the nucleus

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


@dataclass(frozen=True)
class FinderSettings:
    """Sizes in red-cell diameters (d) and areas in d squared; the colour cut-off relative to the field."""

    contrast: float = 0.4  # cut-off this far from the red cells' purple excess to the field's strongest (99.5th pct)
    spread: float = 3.0  # and at least this many robust standard deviations above the red cells' median
    min_nucleus: float = 0.48  # d^2: smaller purple blobs are platelets or debris
    max_nucleus: float = 14.0  # d^2
    max_area: float = 0.35  # of the field: larger means the image is a single-cell crop, not a field
    close: float = 0.11  # d: closing merges the lobes of a segmented nucleus
    grow: float = 1.4  # cell box = nucleus box scaled by this (cytoplasm around the nucleus)
    min_cell: float = 1.36  # d: the cell box's side at least this
    merge: float = 0.15  # d: nucleus parts whose boxes come this close are one nucleus (lobes, a cut by a granule)


@dataclass(frozen=True)
class FieldAnalysis:
    """What the finder saw in one field: the WBCs, the ruler it used, and why it found nothing when it could
    not look (``problem``: no red cells, too blurred)."""

    detections: list[Detection]
    scale: FieldScale
    threshold: float | None = None

    @property
    def problem(self) -> str | None:
        return self.scale.problem

    @property
    def px_per_rbc(self) -> float | None:
        return self.scale.px_per_rbc


def smoothed_excess(rgb: np.ndarray, scale: float, pil: Image.Image | None = None) -> np.ndarray:
    """Purple excess of a copy resized by ``scale`` and lightly blurred (granules and noise smoothed away).
    ``pil`` is the same pixels as a Pillow image when the caller has one (converting costs 0.4 ms a cell)."""
    height, width = rgb.shape[:2]
    small = Image.fromarray(rgb) if pil is None else pil
    if scale != 1.0:
        small = small.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    return purple_excess(np.asarray(small.filter(ImageFilter.GaussianBlur(1.0))))


def merged_parts(labels: np.ndarray, count: int, gap: float, least: float) -> list[list[int]]:
    """Component numbers grouped so that parts whose bounding boxes come within ``gap`` px are one group (the
    lobes of one nucleus); parts under ``least`` px (specks) are left out."""
    areas, low_x, low_y, high_x, high_y = component_boxes(labels, count)
    parts = [index for index in range(1, count + 1) if areas[index] >= least]
    boxes = {index: (low_x[index], low_y[index], high_x[index], high_y[index]) for index in parts}
    group = {index: index for index in parts}

    def root(index: int) -> int:
        while group[index] != index:
            index = group[index]
        return index

    for a_pos, a in enumerate(parts):
        ax0, ay0, ax1, ay1 = boxes[a]
        for b in parts[a_pos + 1 :]:
            bx0, by0, bx1, by1 = boxes[b]
            if max(bx0 - ax1, ax0 - bx1, by0 - ay1, ay0 - by1) <= gap:
                group[root(b)] = root(a)
    grouped: dict[int, list[int]] = {}
    for index in parts:
        grouped.setdefault(root(index), []).append(index)
    return list(grouped.values())


def nucleus_threshold(excess: np.ndarray, density: np.ndarray, settings: FinderSettings) -> float:
    """The purple-excess cut-off of this field: between its red cells' level and its strongest stain, and well
    above the red cells' own spread (median and MAD, which the few nucleus pixels do not move)."""
    cells, _ = cell_mask(density, excess)  # the red cells, not the nuclei that a strong nuclear stain splits off
    values = excess[cells] if cells.sum() > 100 else excess.ravel()
    level = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - level)))
    top = float(np.percentile(excess, 99.5))
    return max(level + settings.contrast * (top - level), level + settings.spread * spread)


def analyse_field(
    rgb: np.ndarray, settings: FinderSettings = FinderSettings(), scale: FieldScale | None = None
) -> FieldAnalysis:
    """WBC detections in an RGB uint8 field, best first, with the red-cell ruler used (measured unless given)."""
    scale = measure_scale(rgb) if scale is None else scale
    if scale.px_per_rbc is None:
        return FieldAnalysis([], scale)
    height, width = rgb.shape[:2]
    work = min(WORK_RBC / scale.px_per_rbc, MAX_WORK_SIDE / max(height, width))
    d = scale.px_per_rbc * work  # a red cell's diameter at working resolution
    normalised = Image.fromarray(background_normalised(rgb).astype(np.uint8))
    if abs(work - 1.0) > 1e-3:
        normalised = normalised.resize(
            (max(1, round(width * work)), max(1, round(height * work))), Image.Resampling.BILINEAR
        )
    blurred = np.asarray(normalised.filter(ImageFilter.GaussianBlur(d / 44.0)))
    excess = purple_excess(blurred)
    threshold = nucleus_threshold(excess, optical_density(blurred.astype(np.float32)), settings)
    binary = closed(excess > threshold, max(3, round(settings.close * d)))
    labels, count = label_components(binary)
    work_area = binary.size
    detections = []
    for members in merged_parts(labels, count, settings.merge * d, settings.min_nucleus * d * d / 8):
        ys, xs = np.nonzero(np.isin(labels, members))
        nucleus = len(xs) / (d * d)
        if not settings.min_nucleus <= nucleus <= settings.max_nucleus or len(xs) / work_area > settings.max_area:
            continue
        strength = float(np.clip((excess[ys, xs].mean() - threshold) / 60.0 + 0.5, 0.0, 1.0))
        x0, x1, y0, y1 = xs.min() / work, (xs.max() + 1) / work, ys.min() / work, (ys.max() + 1) / work
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        least = settings.min_cell * scale.px_per_rbc
        side_w = max((x1 - x0) * settings.grow, least)
        side_h = max((y1 - y0) * settings.grow, least)
        box = (
            int(max(0, round(cx - side_w / 2))),
            int(max(0, round(cy - side_h / 2))),
            int(min(width, round(cx + side_w / 2))),
            int(min(height, round(cy + side_h / 2))),
        )
        score = float(np.clip(0.5 * strength + 0.5 * min(1.0, nucleus / 0.8), 0.0, 1.0))
        detections.append(Detection(box, score, len(xs) / work_area))
    return FieldAnalysis(sorted(detections, key=lambda d: -d.score), scale, threshold)


def find_wbcs(rgb: np.ndarray, settings: FinderSettings = FinderSettings()) -> list[Detection]:
    """WBC detections in an RGB uint8 field, best first (none where the field cannot be measured)."""
    return analyse_field(rgb, settings).detections


def crop_cell(rgb: np.ndarray, detection: Detection, context: float = 1.35) -> np.ndarray:
    """A square crop centred on the cell, ``context`` times the cell box, padded with the field's median."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = detection.box
    side = round(max(x1 - x0, y1 - y0) * context)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left, top = cx - side // 2, cy - side // 2
    fill = np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = fill
    sx0, sy0 = max(0, left), max(0, top)
    sx1, sy1 = min(width, left + side), min(height, top + side)
    out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = rgb[sy0:sy1, sx0:sx1]
    return out


SINGLE_CELL_MAX_SIDE = 400  # CellaVision crops are 360 px, BCCD crops under 300 px; smear fields are larger
SINGLE_NUCLEUS_AREA = 0.12  # one nucleus covering this much of a large image: a high-resolution single cell


def looks_like_field(rgb: np.ndarray, detections: list[Detection]) -> bool:
    """``auto`` mode's decision. Nucleus sizes of PBC crops (3.5-11 % of the image) and BCCD fields (2-6 %)
    overlap, so size of the image decides first; a large image is a single cell only if one nucleus fills it."""
    height, width = rgb.shape[:2]
    if max(height, width) <= SINGLE_CELL_MAX_SIDE:
        return False
    return not (len(detections) == 1 and detections[0].nucleus_area >= SINGLE_NUCLEUS_AREA)
