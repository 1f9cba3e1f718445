"""The canonical cell view: framing on the nucleus and stain normalisation, on real cells from two labs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wbc_desktop.core.canonical import (
    FRAME,
    NORMALISE_POWER,
    REFERENCE_STRENGTH,
    WHITE,
    canonical_cell,
    frame_on_nucleus,
    framed_view,
    model_view,
    normalise_stain,
    nucleus_box,
    optical_density,
    stain_strength,
)
from wbc_desktop.core.images import load_image

FIXTURES = Path(__file__).parent / "fixtures"
PBC = sorted((FIXTURES / "pbc").glob("*/*.jpg"))
BCCD = sorted(p for p in (FIXTURES / "bccd_crops").glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def synthetic_cell(canvas: int = 300, centre: tuple[int, int] = (200, 90), radius: int = 30) -> np.ndarray:
    """A dark purple disc (nucleus) on beige background, away from the image centre."""
    image = np.empty((canvas, canvas, 3), np.uint8)
    image[:] = (240, 220, 200)
    ys, xs = np.mgrid[:canvas, :canvas]
    image[(xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2] = (90, 50, 140)
    return image


def test_frame_centres_an_off_centre_nucleus_and_sizes_the_square_from_it():
    image = synthetic_cell()
    x0, y0, x1, y1 = nucleus_box(image)
    assert abs((x0 + x1) / 2 - 200) < 6 and abs((y0 + y1) / 2 - 90) < 6
    framed = frame_on_nucleus(image)
    assert framed.shape[0] == framed.shape[1] == pytest.approx(60 * FRAME, abs=8)
    centre = framed[framed.shape[0] // 2, framed.shape[1] // 2]
    assert tuple(centre) == (90, 50, 140)  # the nucleus is in the middle of the view
    assert tuple(framed[0, 0]) == (240, 220, 200)  # corners are background


def test_frame_pads_with_background_when_the_nucleus_touches_the_edge():
    image = synthetic_cell(canvas=120, centre=(100, 60), radius=30)
    framed = frame_on_nucleus(image)
    assert tuple(framed[framed.shape[0] // 2, -1]) == (240, 220, 200)


@pytest.mark.parametrize("path", PBC + BCCD, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_real_cells_from_both_labs_are_framed_alike(path):
    """PBC shows the cell small among red cells, BCCD fills the crop with it: after framing, the nucleus spans
    about 1/FRAME of the view in both (a framing that missed the nucleus would not)."""
    framed = frame_on_nucleus(load_image(path))
    box = nucleus_box(framed)
    assert box is not None
    span = max(box[2] - box[0], box[3] - box[1]) / framed.shape[0]
    assert 0.4 <= span <= 0.95


@pytest.mark.parametrize("path", PBC[:2] + BCCD[:3], ids=lambda p: p.name)
def test_stain_normalisation_moves_both_labs_half_way_to_the_reference_darkness(path):
    image = load_image(path)
    view = canonical_cell(image, 128)
    assert view.shape == (128, 128, 3) and view.dtype == np.uint8
    before = stain_strength(optical_density(framed_view(image, 128)))
    expected = before * (REFERENCE_STRENGTH / before) ** NORMALISE_POWER
    assert stain_strength(optical_density(view)) == pytest.approx(expected, rel=0.2)
    background = np.percentile(view.reshape(-1, 3), 99, axis=0)
    assert np.abs(background - WHITE).max() < 20


def test_faint_bluish_lab_is_darkened_and_keeps_its_hue_order():
    faint = synthetic_cell()
    faint[faint[..., 0] == 90] = (150, 140, 220)  # BCCD-like light blue-violet nucleus
    faint[faint[..., 0] == 240] = (215, 215, 225)  # grey background
    out = normalise_stain(frame_on_nucleus(faint))
    nucleus = out[out.shape[0] // 2, out.shape[1] // 2].astype(int)
    assert nucleus.sum() < 450  # darker than it came (510), and than white balance alone makes it (528)
    assert nucleus[2] > nucleus[0] and nucleus[2] > nucleus[1]  # still blue-dominant: hue kept


@pytest.mark.parametrize(
    "image",
    [np.full((50, 40, 3), 200, np.uint8), np.zeros((3, 3, 3), np.uint8), np.full((1, 500, 3), 90, np.uint8)],
    ids=["blank", "tiny", "one-row"],
)
def test_images_without_a_nucleus_still_give_a_view(image):
    view = canonical_cell(image, 64)
    assert view.shape == (64, 64, 3)


def test_views_are_deterministic_and_named():
    image = load_image(BCCD[0])
    assert np.array_equal(model_view(image, 64, "canonical"), model_view(image, 64, "canonical"))
    assert model_view(image, 64, "resize").shape == (64, 64, 3)
    with pytest.raises(ValueError, match="unknown model view"):
        model_view(image, 64, "sharpen")


@pytest.mark.parametrize("path", PBC[:3] + BCCD[:3], ids=lambda p: p.parent.name + "/" + p.name)
def test_the_fast_stain_arithmetic_gives_the_same_bits_as_the_plain_formulas(path):
    """The view is what the model was trained on: the in-place and per-column arithmetic must not move a bit."""
    view = framed_view(load_image(path), 96)
    data = view.reshape(-1, 3)
    white = np.maximum(np.percentile(data.astype(np.float64), 99, axis=0), 1.0)
    density = np.clip(-np.log((data.astype(np.float64) + 1.0) / (white + 1.0)), 0.0, None)
    assert np.array_equal(optical_density(view), density)
    total = density.sum(axis=1)
    red_share = density[:, 0] / np.maximum(total, 1e-6)
    weight = np.clip((red_share - 0.23) / (0.31 - 0.23), 0.0, 1.0)
    nuclear = total[weight > 0.5]
    strength = float(np.percentile(nuclear if len(nuclear) >= 20 else total, 95))
    assert stain_strength(density) == strength
    factor = 1.0 + (float(np.clip(REFERENCE_STRENGTH / strength, 0.25, 5.0)) ** NORMALISE_POWER - 1.0) * weight[:, None]
    plain = np.clip(WHITE * np.exp(-density * factor), 0, 255).astype(np.uint8).reshape(view.shape)
    assert np.array_equal(normalise_stain(view), plain)
