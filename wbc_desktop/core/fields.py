"""Find white blood cells in a smear field (NumPy + Pillow, no detector network).

WBC nuclei are stained purple-blue by Romanowsky stains: their blue channel is far above the mean of red and
green, while red cells (pink-red) and background (pale) sit near or below it. Thresholding that "purple excess",
closing the mask so the lobes of one nucleus merge, and keeping components of nucleus size gives one box per
WBC; the box is grown from the nucleus to the whole cell and a square crop centred on it is cut for the
classifier, comparable to the training crops (a cell centred in its surroundings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

WORK_SIDE = 320  # the finder works on a copy whose longer side is this many pixels


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
    threshold: float = 35.0  # purple excess (B - (R+G)/2) that counts as nucleus, after light smoothing
    min_area: float = 0.012  # of the field: smaller purple blobs are platelets or debris
    max_area: float = 0.35  # of the field: larger means the image is a single-cell crop, not a field
    close_px: int = 5  # closing at working scale, merges the lobes of a segmented nucleus
    grow: float = 1.4  # cell box = nucleus box scaled by this (cytoplasm around the nucleus)
    min_cell_fraction: float = 0.25  # cell box side at least this fraction of the field's shorter side


def purple_excess(rgb: np.ndarray) -> np.ndarray:
    """B - (R + G) / 2 as float32: high on stained nuclei, near zero or negative elsewhere."""
    data = rgb.astype(np.float32)
    return data[..., 2] - (data[..., 0] + data[..., 1]) / 2.0


def smoothed_excess(rgb: np.ndarray, scale: float, pil: Image.Image | None = None) -> np.ndarray:
    """Purple excess of a copy resized by ``scale`` and lightly blurred (granules and noise smoothed away).
    ``pil`` is the same pixels as a Pillow image when the caller has one (converting costs 0.4 ms a cell)."""
    height, width = rgb.shape[:2]
    small = Image.fromarray(rgb) if pil is None else pil
    if scale != 1.0:
        small = small.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    return purple_excess(np.asarray(small.filter(ImageFilter.GaussianBlur(1.0))))


def _sliding(mask: np.ndarray, size: int, combine) -> np.ndarray:
    """``combine`` (logical or/and) over a centred ``size`` square, edges replicated as Pillow's rank filters do;
    separable: a pass along rows, then one along columns."""
    half = size // 2
    for axis in (0, 1):
        length = mask.shape[axis]
        padded = np.pad(mask, [(half, half) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        window = [slice(None), slice(None)]
        window[axis] = slice(0, length)
        out = padded[tuple(window)].copy()
        for offset in range(1, size):
            window[axis] = slice(offset, offset + length)
            combine(out, padded[tuple(window)], out=out)
        mask = out
    return mask


def closed(mask: np.ndarray, size: int) -> np.ndarray:
    """Morphological closing with a ``size`` square (made odd): merges the lobes of one nucleus.

    Max then min filter in NumPy; equal to Pillow's MaxFilter/MinFilter pair (checked on real and random masks
    in tests/test_fields.py) at a tenth of the time, which mattered: every cell's framing runs it."""
    size = size | 1
    return _sliding(_sliding(np.asarray(mask, dtype=bool), size, np.logical_or), size, np.logical_and)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected component labels (0 = background), numbered in the raster order of each one's first pixel.

    Union-find over the runs of each row (a run joins the runs of the row above that it overlaps), then each
    run is painted with its component's number: a few hundred runs in a cell's mask, so plain Python is fast
    (0.2 ms where pixel-wise label propagation took 5)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    run_rows, run_starts = (part.tolist() for part in np.nonzero(edges == 1))
    run_ends = np.nonzero(edges == -1)[1].tolist()  # exclusive; same row-major order as the starts
    parent = list(range(len(run_rows)))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    above_first = above_end = row_first = 0  # runs of the row above: [above_first, above_end)
    row = -1
    for run, (run_row, start, end) in enumerate(zip(run_rows, run_starts, run_ends, strict=True)):
        if run_row != row:
            above_first, above_end = (row_first, run) if run_row == row + 1 else (run, run)
            row_first, row = run, run_row
        while above_first < above_end and run_ends[above_first] <= start:
            above_first += 1  # runs of the row above that end before this one starts never touch later ones
        other = above_first
        while other < above_end and run_starts[other] < end:
            a, b = root(run), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the root is a component's first run in raster order
            other += 1
    labels = np.zeros((height, width), dtype=np.int32)
    numbers: dict[int, int] = {}
    for run, (run_row, start, end) in enumerate(zip(run_rows, run_starts, run_ends, strict=True)):
        labels[run_row, start:end] = numbers.setdefault(root(run), len(numbers) + 1)
    return labels, len(numbers)


def find_wbcs(rgb: np.ndarray, settings: FinderSettings = FinderSettings()) -> list[Detection]:
    """WBC detections in an RGB uint8 field, best first."""
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    excess = smoothed_excess(rgb, scale)
    binary = closed(excess > settings.threshold, settings.close_px)
    labels, count = label_components(binary)
    work_area = binary.size
    detections = []
    for index in range(1, count + 1):
        ys, xs = np.nonzero(labels == index)
        area = len(xs) / work_area
        if not settings.min_area <= area <= settings.max_area:
            continue
        strength = float(np.clip(excess[ys, xs].mean() / 100.0, 0.0, 1.0))
        x0, x1, y0, y1 = xs.min() / scale, (xs.max() + 1) / scale, ys.min() / scale, (ys.max() + 1) / scale
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        side_w = max((x1 - x0) * settings.grow, settings.min_cell_fraction * min(width, height))
        side_h = max((y1 - y0) * settings.grow, settings.min_cell_fraction * min(width, height))
        box = (
            int(max(0, round(cx - side_w / 2))),
            int(max(0, round(cy - side_h / 2))),
            int(min(width, round(cx + side_w / 2))),
            int(min(height, round(cy + side_h / 2))),
        )
        score = float(np.clip(0.5 * strength + 0.5 * min(1.0, area / 0.02), 0.0, 1.0))
        detections.append(Detection(box, score, area))
    return sorted(detections, key=lambda d: -d.score)


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
