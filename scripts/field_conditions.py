"""Simulated microscopes and stains for the WBC finder's evaluation (scripts/evaluate_fields.py).

Lower magnification, the honest way: a field shrunk by ``factor`` shows a smaller piece of the slide at fewer pixels
per micrometre, so a camera of the same size sees *more* cells. Shrinking one BCCD field and tiling its neighbours
around it back to 640x480 gives exactly that: every cell, red and white, is ``factor`` times smaller and each WBC
covers a smaller share of the image (boxes carried along; a WBC cut by the image edge so that less than half of it
is left is neither a hit nor a miss).

Stain shifts act in optical density (OD = -log(I / background)), where stains add: each pixel is unmixed into a
nuclear (azure/methylene blue) and an eosin part along two stain vectors measured on BCCD (the mean OD direction of
nuclei and of red cells, 36 fields), changed, and mixed back with what the two vectors do not explain (texture).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]

NUCLEAR_OD = np.array([0.533, 0.846, 0.008], dtype=np.float32)  # BCCD nuclei: red and green absorbed, blue passed
EOSIN_OD = np.array([0.351, 0.651, 0.673], dtype=np.float32)  # BCCD red cells


@dataclass
class Scene:
    """One simulated field: the image, its WBC boxes, the boxes cut so far that they count neither way, and the
    scale factor against the original (what the finder's ``px_per_rbc`` should follow)."""

    rgb: np.ndarray
    boxes: list[Box]
    ignored: list[Box]
    factor: float


def tiled_scene(fields: Sequence[tuple[np.ndarray, list[Box]]], factor: float, size=(640, 480)) -> Scene:
    """The first field shrunk by ``factor`` at the top left, its successors tiled right and down until the canvas
    of ``size`` is full (a field of factor 1.0 is returned as it is)."""
    width, height = size
    first = fields[0][0]
    if factor >= 0.999 and first.shape[1] == width and first.shape[0] == height:
        return Scene(first, list(fields[0][1]), [], 1.0)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    boxes: list[Box] = []
    ignored: list[Box] = []
    tile_w, tile_h = round(first.shape[1] * factor), round(first.shape[0] * factor)
    columns, rows = math.ceil(width / tile_w), math.ceil(height / tile_h)
    for index in range(columns * rows):
        rgb, field_boxes = fields[index % len(fields)]
        col, row = index % columns, index // columns
        left, top = col * tile_w, row * tile_h
        small = np.asarray(Image.fromarray(rgb).resize((tile_w, tile_h), Image.Resampling.LANCZOS))
        visible_w, visible_h = min(tile_w, width - left), min(tile_h, height - top)
        canvas[top : top + visible_h, left : left + visible_w] = small[:visible_h, :visible_w]
        for x0, y0, x1, y1 in field_boxes:
            box = (left + x0 * factor, top + y0 * factor, left + x1 * factor, top + y1 * factor)
            clipped = (box[0], box[1], min(box[2], width), min(box[3], height))
            full = (box[2] - box[0]) * (box[3] - box[1])
            kept = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
            if kept <= 0:
                continue
            target = boxes if kept >= 0.5 * full else ignored
            target.append(tuple(round(v) for v in clipped))
    return Scene(canvas, boxes, ignored, factor)


def _optical_density(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = rgb.astype(np.float32) + 1.0
    background = np.percentile(data.reshape(-1, 3), 97, axis=0)
    return -np.log(np.clip(data / background, 1e-3, 1.0)), background


def _from_density(density: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.clip(background * np.exp(-density) - 1.0, 0, 255).astype(np.uint8)


def restained(rgb: np.ndarray, nuclear: float = 1.0, eosin: float = 1.0, eosin_vector=EOSIN_OD) -> np.ndarray:
    """The field as if stained with ``nuclear`` / ``eosin`` times the stain, eosin along ``eosin_vector``."""
    density, background = _optical_density(rgb)
    stains = np.stack([NUCLEAR_OD, EOSIN_OD], axis=1)  # 3x2
    amounts = density.reshape(-1, 3) @ np.linalg.pinv(stains).T  # N x 2
    residual = density.reshape(-1, 3) - amounts @ stains.T
    new_eosin = np.asarray(eosin_vector, dtype=np.float32)
    changed = amounts[:, :1] * nuclear * NUCLEAR_OD + amounts[:, 1:] * eosin * new_eosin + residual
    return _from_density(changed.reshape(density.shape), background)


def white_balanced(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.asarray(gains, dtype=np.float32), 0, 255).astype(np.uint8)


def hue_rotated(rgb: np.ndarray, degrees: float) -> np.ndarray:
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(degrees * 256 / 360)) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


LILAC_EOSIN = EOSIN_OD + 0.45 * NUCLEAR_OD  # red cells that take up some azure: lilac, closer to the nuclei

STAIN_SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as is": lambda rgb: rgb,
    "warm white balance": lambda rgb: white_balanced(rgb, (1.08, 1.0, 0.82)),
    "cool white balance": lambda rgb: white_balanced(rgb, (0.86, 0.97, 1.08)),
    "hue +12 deg": lambda rgb: hue_rotated(rgb, 12),
    "hue -12 deg": lambda rgb: hue_rotated(rgb, -12),
    "pale nuclear stain": lambda rgb: restained(rgb, nuclear=0.55),
    "strong nuclear stain": lambda rgb: restained(rgb, nuclear=1.4),
    "lilac red cells": lambda rgb: restained(rgb, eosin_vector=LILAC_EOSIN),
    "pale nuclei, lilac red cells": lambda rgb: restained(rgb, nuclear=0.6, eosin_vector=LILAC_EOSIN),
}
