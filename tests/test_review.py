"""Review in the gallery: one current cell for the window; a key acts on the thumbnail the technician sees and
moves to the next cell of the same column."""

from __future__ import annotations

import numpy as np
from conftest import drop, make_window, signer, solid_images
from fakes import FakeClassifier
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from wbc_desktop.gui.models import CELL_ID_ROLE, REVIEW_GROUP


class HalfUnsure(FakeClassifier):
    """Every other image (by its top-left pixel) is called with low confidence: a mixed batch, as in a real
    sample, so that the Needs review column and the table's row order differ."""

    def predict(self, images):
        rows = super().predict(images)
        for row, image in zip(rows, images, strict=True):
            if int(image[0, 0, 0]) % 2 == 0:
                row[:] = 0.5 / (len(row) - 1)
                row[0] = 0.5
        return rows


def loaded_window(qtbot, folder, count: int, size: int):
    """The real window with ``count`` solid-colour cells (half of them unsure) classified into a case."""
    window = make_window(qtbot, HalfUnsure())
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(folder, count, size=size))
    return window


def click(qtbot, column, cell_id: int) -> None:
    """A real mouse click on the thumbnail of ``cell_id`` in a gallery column."""
    proxy = column.model()
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 0).data(CELL_ID_ROLE) == cell_id)
    rect = column.visualRect(proxy.index(row, 0))
    qtbot.mouseClick(column.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def column_ids(column) -> list[int]:
    proxy = column.model()
    return [proxy.index(row, 0).data(CELL_ID_ROLE) for row in range(proxy.rowCount())]


def highlighted(column) -> int | None:
    index = column.currentIndex()
    return index.data(CELL_ID_ROLE) if index.isValid() else None


def test_a_key_in_the_gallery_acts_on_the_highlighted_thumbnail_then_moves_down_its_column(qtbot, tmp_path):
    """The issue's repro: Gallery › click the first Needs-review thumbnail › 5 › click the highlighted thumbnail
    › 1. Before, the second key changed the next row of the Cells table, a cell the technician never saw."""
    window = loaded_window(qtbot, tmp_path / "cells", 12, 32)
    window.tabs.setCurrentWidget(window.gallery)
    window.activateWindow()
    review = window.gallery.columns[REVIEW_GROUP]
    unsure = column_ids(review)
    assert len(unsure) == 6 and unsure != [c.id for c in window.case.cells][:6]  # the column skips table rows
    labels_before = {cell.id: cell.label for cell in window.case.cells}

    click(qtbot, review, unsure[0])
    assert window.current_cell_id == unsure[0] and highlighted(review) == unsure[0]
    review.setFocus()
    key_5, key_1 = (next(k for k, v in window.settings.key_map.items() if v == c) for c in ("monocyte", "neutrophil"))
    with qtbot.waitSignal(window.differential_updated, timeout=2000):
        qtbot.keyClick(review, key_5)
    # the key acted on the clicked cell; the next cell of the same column is current and highlighted
    assert window.case.cell(unsure[0]).label == "monocyte"
    assert window.current_cell_id == unsure[1] and highlighted(review) == unsure[1]
    assert [highlighted(c) for g, c in window.gallery.columns.items() if g != REVIEW_GROUP] == [None] * (
        len(window.gallery.columns) - 1
    )  # no other column keeps a highlight

    click(qtbot, review, highlighted(review))
    with qtbot.waitSignal(window.differential_updated, timeout=2000):
        qtbot.keyClick(review, key_1)
    assert window.case.cell(unsure[1]).label == "neutrophil"
    changed = {cell.id for cell in window.case.cells if cell.label != labels_before[cell.id]}
    assert changed <= {unsure[0], unsure[1]}  # nothing else was touched
    assert window.current_cell_id == unsure[2] and highlighted(review) == unsure[2]


def test_selecting_a_cell_anywhere_moves_the_one_highlight(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 8, 32)
    sure = next(c for c in window.case.cells if not c.needs_review(window.review_threshold))
    unsure = next(c for c in window.case.cells if c.needs_review(window.review_threshold))
    window.review.select_cell(unsure.id)
    window.review.select_cell(sure.id)  # e.g. a click in the table or on a box of a field
    shown = {group: highlighted(column) for group, column in window.gallery.columns.items()}
    assert [cell for cell in shown.values() if cell is not None] == [sure.id]
    assert window.table.currentIndex().row() == window.cells_model.row_of(sure.id)
    assert np.isclose(window.case.cell(window.current_cell_id).confidence, sure.confidence)


def test_left_and_right_move_the_highlight_between_columns(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 8, 32)
    window.tabs.setCurrentWidget(window.gallery)
    groups = window.gallery.groups_with_cells()
    assert len(groups) >= 2
    first = window.gallery.cell_ids(groups[0])[-1]  # the last cell of the first column
    window.review.select_cell(first)
    window.activateWindow()
    window.gallery.columns[groups[0]].setFocus()
    qtbot.keyClick(window.gallery.columns[groups[0]], Qt.Key.Key_Right)
    row = min(window.gallery.cell_ids(groups[0]).index(first), len(window.gallery.cell_ids(groups[1])) - 1)
    assert window.current_cell_id == window.gallery.cell_ids(groups[1])[row]
    assert QApplication.focusWidget() is window.gallery.columns[groups[1]]
    qtbot.keyClick(window.gallery.columns[groups[1]], Qt.Key.Key_Left)
    assert window.gallery.place_of(window.current_cell_id)[0] == groups[0]


def test_undo_and_redo_restore_label_status_and_differential_and_are_audited(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 6, 32)
    window.activateWindow()
    window.table.setFocus()
    cell = window.case.cells[0]
    model_call, status = cell.label, cell.status
    counts = dict(window.differential_panel.model.differential.counts)
    other = next(c for c in window.classes if c != model_call and c in counts)

    window.review.reclassify([cell.id], other)  # reclassify, then exclude, then confirm another cell
    window.review.reclassify([cell.id], None)
    window.review.reclassify([window.case.cells[1].id], window.case.cells[1].label)
    assert window.case.cells[1].status == "reviewed"
    for _ in range(3):
        qtbot.keyClick(window.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (cell.label, cell.status) == (model_call, status) and window.case.cells[1].status == "auto"
    assert window.differential_panel.model.differential.counts == counts  # the differential is back too
    qtbot.keyClick(window.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert (cell.label, cell.status) == (other, "reclassified")
    actions = [entry.action for entry in window.case.audit()]
    assert actions.count("undo (back to auto)") == 2 and "undo (back to reclassified)" in actions
    assert actions[-1] == "redo (back to reclassified)"


def test_undo_cannot_change_a_signed_case(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 2, 32)
    window.review.reclassify([window.case.cells[0].id], None)
    assert window.cases.sign_out(signer(window), "two cells of a test")
    assert not window.undo_stack.canUndo()
    window.undo_stack.undo()
    assert window.case.cells[0].label is None


def test_confirm_page_accepts_the_cells_shown_in_a_class_column_only(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 40, 32)
    window.tabs.setCurrentWidget(window.gallery)
    window.activateWindow()
    first_unsure = window.gallery.cell_ids(REVIEW_GROUP)[0]
    window.review.select_cell(first_unsure)
    qtbot.keyClick(window.gallery.columns[REVIEW_GROUP], Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert all(c.status == "auto" for c in window.case.cells)  # never the Needs review column

    group = next(g for g in window.classes if window.gallery.cell_ids(g))
    column = window.gallery.columns[group]
    shown = window.gallery.visible_cell_ids(group)
    window.review.select_cell(shown[0])
    column.setFocus()
    qtbot.keyClick(column, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    accepted = {c.id for c in window.case.cells if c.status == "accepted"}
    assert accepted == set(shown) and accepted
    assert all(c.status == "auto" for c in window.case.cells if c.id not in accepted)
    assert window.case.review_counts()["accepted"] == len(shown)
    assert [e.action for e in window.case.audit()].count("confirm page") == len(shown)
    window.undo_stack.undo()
    assert all(c.status == "auto" for c in window.case.cells)


def test_another_labs_cells_wait_for_review_in_the_window_however_confident(qtbot):
    """Every call the stain-robust model made (the cell looks foreign) is in Needs review, kept in the case."""
    from conftest import BCCD_CROPS, PBC

    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [BCCD_CROPS, PBC / "neutrophil"])
    foreign = [c for c in window.case.cells if "bccd" in c.path]
    assert foreign and all(c.foreign and c.needs_review(window.review_threshold) for c in foreign)
    assert set(window.gallery.cell_ids(REVIEW_GROUP)) >= {c.id for c in foreign}
    reopened = window.store.open_case(window.case.id)
    assert all(c.foreign for c in reopened.cells if "bccd" in c.path)
    assert not any(c.foreign for c in reopened.cells if "bccd" not in c.path)


def test_gallery_thumbnails_are_big_enough_sized_by_a_slider_and_named_in_tooltips(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 4, 200)
    column = window.gallery.columns[REVIEW_GROUP]
    index = column.model().index(0, 0)
    assert column.iconSize().width() >= 96 and index.data(Qt.ItemDataRole.DisplayRole) is None
    assert index.data(Qt.ItemDataRole.ToolTipRole).endswith(".png")
    window.gallery.size_slider.setValue(128)
    assert all(c.iconSize().width() == 128 for c in window.gallery.columns.values())
    assert window.cells_model.thumbnail(window.case.cells[0].id).width() == 128  # sharp at the largest size


def test_z_shows_the_current_cell_at_its_original_size(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 2, 150)
    window.activateWindow()
    window.table.setFocus()
    window.review.select_cell(window.case.cells[0].id)
    qtbot.keyClick(window.table, Qt.Key.Key_Z)
    dialog = window.review.zoom_dialog
    assert dialog.image.pixmap().width() == 150
    dialog.show_at(2)
    assert dialog.image.pixmap().width() == 300
    dialog.accept()


def test_the_window_fits_a_laptop_screen(qtbot):
    """Everything fits 1280x720 (the gallery scrolls sideways, the panels shrink); before, the window opened at
    1360x860 and ten gallery columns would have forced it to 1600 px."""
    window = make_window(qtbot, HalfUnsure())
    minimum = window.minimumSizeHint()
    assert minimum.width() <= 1280 and minimum.height() <= 720 - 40, minimum


def test_one_class_at_a_time_shows_a_class_page_and_ctrl_page_down_moves_to_the_next(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 30, 32)
    window.tabs.setCurrentWidget(window.gallery)
    window.activateWindow()
    window.gallery.one_class.setChecked(True)
    groups = window.gallery.groups_with_cells()
    shown = [g for g, holder in window.gallery.holders.items() if not holder.isHidden()]
    assert len(shown) == 1 and shown[0] in groups
    column = window.gallery.columns[shown[0]]
    column.setFocus()
    qtbot.keyClick(column, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    following = groups[(groups.index(shown[0]) + 1) % len(groups)]
    assert [g for g, holder in window.gallery.holders.items() if not holder.isHidden()] == [following]
    assert window.current_cell_id == window.gallery.cell_ids(following)[0]
    window.gallery.one_class.setChecked(False)
    assert not any(holder.isHidden() for holder in window.gallery.holders.values())


def test_reaching_the_target_is_shown_and_an_uncertain_flag_asks_for_more(qtbot, tmp_path):
    window = loaded_window(qtbot, tmp_path / "cells", 99, 16)
    panel = window.differential_panel
    assert "Target reached" not in panel.target.format()
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "one more", 1, size=16))
    window.refresh_differential()
    assert panel.target.format() == "100 of 100 counted · 100 model call(s) still to verify"  # not by a person
    window.case.accept_page([cell.id for cell in window.case.cells], "ana")
    window.refresh_differential()
    assert panel.target.format().startswith("Target reached: 100 of 100")
    differential = panel.model.differential
    undecided = [row for row in differential.rows if row.undecided]
    assert all(display in panel.summary.text() for display in ("not certain at this count",)) == bool(undecided)


def test_confirm_page_never_takes_cells_scrolled_out_of_sight(qtbot, tmp_path):
    """The gallery scrolls sideways on a small screen: a column out of view, or a half-hidden row, is not 'shown'."""
    window = make_window(qtbot, HalfUnsure())
    window.resize(800, 600)
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 40, size=32))
    window.tabs.setCurrentWidget(window.gallery)
    groups = [g for g in window.gallery.groups_with_cells() if g != REVIEW_GROUP]
    far = groups[-1]
    window.gallery.scroll.horizontalScrollBar().setValue(0)
    qtbot.wait(50)
    holder = window.gallery.holders[far]
    on_screen = (
        window.gallery.scroll.viewport()
        .rect()
        .intersects(holder.geometry().translated(-window.gallery.scroll.horizontalScrollBar().value(), 0))
    )
    assert not on_screen and window.gallery.visible_cell_ids(far) == []  # at 800 px the far column is out of view
    column = window.gallery.columns[far]
    shown = set(window.gallery.visible_cell_ids(far))
    viewport = column.viewport().rect()
    for row in range(column.model().rowCount()):
        rect = column.visualRect(column.model().index(row, 0))
        if column.model().index(row, 0).data(CELL_ID_ROLE) in shown:
            assert viewport.contains(rect)  # wholly on screen, never a half-hidden row
    window.review.select_cell(window.gallery.cell_ids(far)[0])  # brings the column into view
    assert window.gallery.visible_cell_ids(far)


def test_window_exports_say_which_calls_need_review_and_sign_out_waits_for_a_batch(qtbot, tmp_path):
    import json

    window = loaded_window(qtbot, tmp_path / "cells", 6, 32)
    window.cases.export("json", tmp_path / "c.json")
    cells = json.loads((tmp_path / "c.json").read_text())["cells"]
    waiting = {c.path for c in window.case.cells if c.needs_review(window.review_threshold)}
    assert waiting and {c["path"] for c in cells if c["needs_review"]} == waiting
    window.batch.task = object()  # a batch still running
    assert not window.cases.sign_out(signer(window), "test") and not window.case.locked
    assert "waits for the batch" in window.banner.text()
    window.batch.task = None


def test_reaching_the_target_is_cued_once_with_a_sound_if_the_lab_wants_one(qtbot, window, tmp_path, monkeypatch):
    """The count reaching its target with every call verified by a person: a message and (Settings › Sound when
    the target is reached) a beep, once at the crossing; model calls nobody verified do not count towards it (the
    bar stays uncoloured and says how many wait), nor does a later key cue again."""
    from conftest import drop, solid_images
    from PySide6.QtWidgets import QApplication

    from wbc_desktop.core.settings import LabSettings

    beeps = []
    monkeypatch.setattr(QApplication, "beep", staticmethod(lambda: beeps.append(1)))
    assert LabSettings.from_dict(LabSettings(target_sound=True).to_dict()).target_sound
    window.settings.target_sound = True
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 4))
    window.case.update_details(target=3)
    window.refresh_differential()
    bar = window.differential_panel.target
    assert "still to verify" in bar.format() and not beeps  # 4 of 3 counted by the model alone: not reached
    cells = window.case.cells
    window.review.reclassify([cells[0].id], None)  # excluded: 3 left, still unverified
    for cell in cells[1:3]:
        window.review.reclassify([cell.id], cell.label)
    assert not beeps  # one call still waits
    window.review.reclassify([cells[3].id], cells[3].label)
    assert beeps == [1] and "Target reached" in window.statusBar().currentMessage()
    assert bar.format().startswith("Target reached")
    window.review.reclassify([cells[1].id], cells[1].label)  # a later key: no new cue
    assert beeps == [1]


def test_keys_reach_the_cells_not_the_sample_field(qtbot, window, tmp_path):
    """With the Sample field focused (it is at launch), opening the gallery, or the sign-out check's jump to the
    first cell to verify, gives the keys to the highlighted cell: a `4` once became the sample ID. Enter in the
    Sample field hands them back too."""
    from conftest import drop, solid_images
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 3))
    window.activateWindow()
    window.tabs.setCurrentWidget(window.table)
    window.case_bar.sample.setFocus()
    window.tabs.setCurrentWidget(window.gallery)  # what a click on the tab does
    current = window.current_cell_id
    qtbot.keyClick(QApplication.focusWidget(), "4")
    assert window.case.cell(current).label == "lymphocyte" and window.case_bar.sample.text() == ""
    window.case_bar.sample.setFocus()
    qtbot.keyClicks(window.case_bar.sample, "S-1")
    qtbot.keyClick(window.case_bar.sample, Qt.Key.Key_Return)
    assert QApplication.focusWidget() is not window.case_bar.sample and window.case.info.sample_id == "S-1"
    window.case_bar.sample.setFocus()
    window.cases.go_to_unverified(tuple(c.id for c in window.case.cells if c.status == "auto"))
    assert QApplication.focusWidget() in window.gallery.columns.values()


def test_redo_has_its_keys_once_and_two_keys_for_one_class_are_refused_with_the_reason(qtbot, window):
    from PySide6.QtGui import QKeySequence

    from wbc_desktop.gui.settings_dialog import SettingsDialog

    redo = next(a for a in window.findChildren(QAction) if a.text() == "&Redo")
    keys = [key.toString() for key in redo.shortcuts()]
    assert keys[0] == "Ctrl+Shift+Z" and len(keys) == len(set(keys))  # the same key twice: Qt ignored both
    assert all(QKeySequence(k) in redo.shortcuts() for k in keys)
    dialog = SettingsDialog(window.settings)
    qtbot.addWidget(dialog)
    dialog.keys["7"].setCurrentIndex(dialog.keys["7"].findData("neutrophil"))  # key 1 files neutrophils too
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and "Keys 1, 7" in dialog.keys_problem.text()
    dialog.keys["7"].setCurrentIndex(dialog.keys["7"].findData("blast"))
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.result_settings().key_map["7"] == "blast"
