"""The WBC finder on committed BCCD fields (boxes vs. their annotations), modes, the CLI JSON and the field view."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, PBC
from fakes import FakeClassifier
from PySide6.QtCore import Qt

from wbc_desktop.cli import main
from wbc_desktop.core.fields import Detection, crop_cell, find_wbcs, looks_like_field
from wbc_desktop.core.images import load_image
from wbc_desktop.core.pipeline import NO_WBC_FOUND, classify_iter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from evaluate_fields import iou, match, voc_boxes

FIELDS = FIXTURES / "bccd_fields"
FIELD_IMAGES = sorted(FIELDS.glob("*.jpg"))


@pytest.mark.parametrize("image", FIELD_IMAGES, ids=lambda p: p.stem)
def test_finder_boxes_match_the_annotations(image):
    truth = voc_boxes(image.with_suffix(".xml"))
    detections = find_wbcs(load_image(image))
    hits, matched = match([d.box for d in detections], truth, 0.5)
    assert hits == len(truth) == len(detections), [d.box for d in detections]
    for t_index, p_index in enumerate(matched):
        assert iou(detections[p_index].box, truth[t_index]) >= 0.5


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_auto_mode_reads_pbc_crops_as_cells_and_bccd_images_as_fields():
    for path in sorted(PBC.rglob("*.jpg")):
        rgb = load_image(path)
        assert not looks_like_field(rgb, find_wbcs(rgb)), path.name
    for path in FIELD_IMAGES:
        rgb = load_image(path)
        assert looks_like_field(rgb, find_wbcs(rgb)), path.name


def test_plain_background_has_no_wbc():
    blank = np.full((480, 640, 3), (235, 200, 205), np.uint8)
    assert find_wbcs(blank) == []
    results = list(classify_iter([FIELD_IMAGES[0]], FakeClassifier(), mode="field", loader=lambda p: blank))
    assert len(results) == 1 and "no red cells" in results[0].error  # nothing to measure the magnification by
    cells_only = FIELDS / "BloodImage_00000.jpg"  # a real field with its WBC painted over: red cells, no WBC
    rgb = load_image(cells_only).copy()
    x0, y0, x1, y1 = voc_boxes(cells_only.with_suffix(".xml"))[0]
    rgb[y0:y1, x0:x1] = np.median(rgb.reshape(-1, 3), axis=0)
    results = list(classify_iter([cells_only], FakeClassifier(), mode="field", loader=lambda p: rgb))
    assert [r.error for r in results] == [NO_WBC_FOUND]


def test_crop_is_square_centred_and_padded_at_the_edge():
    rgb = np.zeros((100, 200, 3), np.uint8)
    crop = crop_cell(rgb, Detection((0, 0, 40, 60), 1.0, 0.01), context=1.0)
    assert crop.shape == (60, 60, 3)


def test_count_json_carries_source_and_box_for_field_cells(tmp_path):
    out = tmp_path / "out.json"
    assert main(["count", str(FIELDS), str(PBC / "monocyte"), "--mode", "auto", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    field_cells = [c for c in report["cells"] if "source" in c]
    assert len(field_cells) == 4  # 1 + 1 + 2 WBCs in the three fields
    for cell in field_cells:
        assert cell["path"].startswith(cell["source"]) and "#wbc" in cell["path"]
        truth = voc_boxes(Path(cell["source"]).with_suffix(".xml"))
        assert max(iou(cell["box"], t) for t in truth) >= 0.5
        assert set(cell) >= {"path", "label", "probabilities", "source", "box"}
    assert sum(1 for c in report["cells"] if "source" not in c) == 4  # the monocyte crops stay single cells
    assert report["images"] == 7


def test_gui_field_boxes_select_delete_and_draw(qtbot):
    from conftest import drop, make_window

    window = make_window(qtbot, FakeClassifier())
    two = next(p for p in FIELD_IMAGES if len(voc_boxes(p.with_suffix(".xml"))) == 2)
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, [two])
    cells = window.case.cells
    assert len(cells) == 2 and all(c.source == str(two) and c.box for c in cells)
    window.review.select_cell(cells[0].id)
    view = window.detail.field
    assert window.detail.stack.currentWidget() is view
    assert {b.cell_id for b in view.boxes} == {c.id for c in cells}
    # clicking inside the second box selects the second cell
    x0, y0, x1, y1 = cells[1].box
    target = view.mapFromScene((x0 + x1) / 2 * view.scale_factor, (y0 + y1) / 2 * view.scale_factor)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=target)
    assert window.current_cell_id == cells[1].id
    # deleting a false box excludes that cell from the count
    window.detail.delete_box.click()
    assert cells[1].status == "excluded" and window.differential_panel.model.differential.total == 1
    # drawing a missed WBC adds a classified cell with its box
    window.detail.draw_box.setChecked(True)
    start = view.mapFromScene(10 * view.scale_factor, 10 * view.scale_factor)
    end = view.mapFromScene(150 * view.scale_factor, 140 * view.scale_factor)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view.viewport(), end)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    drawn = window.case.cells[-1]
    assert len(window.case.cells) == 3 and drawn.source == str(two) and "#drawn1" in drawn.path
    assert abs(drawn.box[0] - 10) <= 3 and abs(drawn.box[3] - 140) <= 3
    assert window.case.audit()[-1].action == "add-box"
    assert window.differential_panel.model.differential.total == 2


def test_a_drawn_cell_and_its_audit_entry_are_written_together(tmp_path, monkeypatch):
    """If the audit entry cannot be written, the drawn cell is not in the case either (one transaction)."""
    from wbc_desktop.core.case import Case
    from wbc_desktop.core.store import CaseStore

    store = CaseStore(tmp_path / "cases.sqlite")
    case = store.create_case(sample_id="S1", operator="A")
    probabilities = {"neutrophil": 0.9, "lymphocyte": 0.1}

    def broken_audit(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Case, "_audit", broken_audit)
    with pytest.raises(RuntimeError):
        case.add_drawn_cell("field.jpg", [1, 2, 30, 40], "neutrophil", probabilities, "Ana")
    monkeypatch.undo()
    assert store.open_case(case.id).cells == [] and case.cells == []
    cell = case.add_drawn_cell("field.jpg", [1, 2, 30, 40], "neutrophil", probabilities, "Ana")
    reopened = store.open_case(case.id)
    assert [c.id for c in reopened.cells] == [cell.id] and reopened.audit()[-1].action == "add-box"


def test_closing_and_labelling_equal_the_reference_filters_on_real_and_random_masks():
    """The NumPy closing and run-based labelling replaced Pillow's rank filters and pixel-wise propagation for
    speed; they must give the very same masks and labels (so detections and framing do not move)."""
    from PIL import Image, ImageFilter
    from scipy import ndimage

    from wbc_desktop.core.fields import closed, label_components, smoothed_excess
    from wbc_desktop.core.masks import otsu_threshold

    def pillow_closed(mask: np.ndarray, size: int) -> np.ndarray:
        image = Image.fromarray(mask.astype(np.uint8) * 255)
        return np.asarray(image.filter(ImageFilter.MaxFilter(size)).filter(ImageFilter.MinFilter(size))) > 0

    masks = []
    for path in [*FIELD_IMAGES, *sorted(PBC.rglob("*.jpg"))[:6]]:
        rgb = load_image(path)
        excess = smoothed_excess(rgb, (320 if max(rgb.shape[:2]) > 400 else 96) / max(rgb.shape[:2]))
        masks += [excess > 35.0, excess > otsu_threshold(excess.ravel())]
    rng = np.random.default_rng(0)
    masks += [rng.random((rng.integers(1, 50), rng.integers(1, 50))) > rng.random() for _ in range(40)]
    for mask in masks:
        for size in (3, 5, 7):
            assert np.array_equal(closed(mask, size), pillow_closed(mask, size))
        labels, count = label_components(mask)
        expected, expected_count = ndimage.label(mask)  # raster order of first pixel, as ours
        assert count == expected_count and np.array_equal(labels, expected)


def test_new_case_clears_the_previous_field_banner_and_status(qtbot):
    from conftest import drop, make_window

    window = make_window(qtbot, FakeClassifier())
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, [FIELD_IMAGES[0]])
    window.review.select_cell(window.case.cells[0].id)
    window.detail.draw_box.setChecked(True)
    window.show_banner("these images look unlike the data the model was trained on")
    window.statusBar().showMessage("3 cells classified")
    assert window.detail.field_buttons.isVisible() and window.banner.isVisible()
    window.cases.new_case()
    assert window.detail.stack.currentWidget() is window.detail.image
    assert not window.detail.field_buttons.isVisible() and not window.detail.draw_box.isChecked()
    assert not window.banner.isVisible() and window.statusBar().currentMessage() == ""
    assert window.cells_model.rowCount() == 0 and window.current_cell_id is None
