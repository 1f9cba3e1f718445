"""Reviewing cells in the main window: selection, detail and field views, keys, reclassification."""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QMenu,
)

from wbc_desktop.core.classes import display_title
from wbc_desktop.core.fields import Detection, crop_cell
from wbc_desktop.core.images import ImageLoadError, display_text, load_image, load_preview
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.gui.models import CELL_ID_ROLE, STATUS_TEXT
from wbc_desktop.gui.undo import LabelCommand
from wbc_desktop.gui.widgets.field_view import FieldBox
from wbc_desktop.gui.widgets.zoom import ZoomDialog
from wbc_desktop.inference.litert import LiteRTClassifier, classified_by_robust

FIELD_PREVIEW_SIDE = 960


def pixmap_from_array(array) -> QPixmap:
    height, width, _ = array.shape
    return QPixmap.fromImage(QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy())


class ReviewController(QObject):
    """The window's part for reviewing: the one current cell (highlighted in table, gallery and field), keys that act
    on it and move on in its column, reclassify / exclude / confirm / confirm page with undo, boxes drawn in a
    field, zoom, and the context menu."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._syncing_current = False  # select_cell is moving the views' highlights (ignore their signals)
        self.zoom_dialog = None

    # --- review --------------------------------------------------------------------------------------------
    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        cell_id = current.data(CELL_ID_ROLE) if current.isValid() else None
        if cell_id is not None and not self._syncing_current:
            self.select_cell(cell_id)

    def _cell_clicked(self, index: QModelIndex) -> None:
        """A click on a thumbnail makes it the current cell even when its column had it as current already
        (currentChanged does not fire then; a key press must act on the cell the technician looks at)."""
        cell_id = index.data(CELL_ID_ROLE) if index.isValid() else None
        if cell_id is not None and cell_id != self.window.current_cell_id:
            self.select_cell(cell_id)

    def select_cell(self, cell_id: int) -> None:
        """Make ``cell_id`` the one current cell of the window: highlighted in the table and in the one gallery
        column holding it (no other column keeps a highlight), shown in the detail and field views."""
        row = self.window.cells_model.row_of(cell_id)
        if row is None:
            return
        self.window.current_cell_id = cell_id
        self._syncing_current = True
        try:
            self.window.table.selectionModel().setCurrentIndex(
                self.window.cells_model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
            )
            if self.window.gallery.one_class.isChecked():
                place = self.window.gallery.place_of(cell_id)
                self.window.gallery.show_only(place[0] if place else None)
            self.window.gallery.show_current(cell_id, self.window.cells_model.index(row, 0))
        finally:
            self._syncing_current = False
        self._show_detail(cell_id)

    def _current_place(self) -> tuple[str, int] | None:
        """The current cell's gallery column and row there (None without a current cell)."""
        current = self.window.current_cell_id
        return self.window.gallery.place_of(current) if current is not None else None

    def focus_current(self) -> None:
        """The keyboard to the view in front (the current cell's gallery column, or the cells table): a class key
        pressed while the Sample field still had the focus typed into the sample ID instead of filing the cell."""
        front = self.window.tabs.currentWidget()
        if front is self.window.gallery:
            place = self._current_place()
            groups = self.window.gallery.groups_with_cells()
            group = place[0] if place else (groups[0] if groups else None)
            if group is not None:
                self.window.gallery.columns[group].setFocus()
        elif front is self.window.table:
            self.window.table.setFocus()

    def _show_detail(self, cell_id: int) -> None:
        if self.window.case is None:
            return
        cell = self.window.case.cell(cell_id)
        status = (
            "needs review"
            if cell.needs_review(self.window.review_threshold)
            else STATUS_TEXT.get(cell.status, cell.status)
        )
        name = display_text(
            Path(cell.source).name + " · " + cell.path.rsplit("#", 1)[-1] if cell.source else Path(cell.path).name
        )
        caption = (
            f"<b>{html.escape(name)}</b><br>{html.escape(display_title(cell.label) if cell.label else 'Excluded')} · "
            f"model: {cell.predicted} ({cell.confidence:.1%}) · {status}"
        )
        if cell.source:
            self._show_field(cell, caption)
            return
        try:
            pixmap = pixmap_from_array(load_preview(cell.path))
        except ImageLoadError:
            pixmap = self.window.cells_model.thumbnail(cell_id)
        self.window.detail.show_cell(pixmap, caption, cell.probabilities, cell.label)

    def _show_field(self, cell, caption: str) -> None:
        """The field the cell was found in, with every box of that field labelled."""
        try:
            with Image.open(cell.source) as image:
                field_width = ImageOps.exif_transpose(image).size[0]
            preview = load_preview(cell.source, FIELD_PREVIEW_SIDE)
        except (ImageLoadError, OSError):
            self.window.detail.show_cell(
                self.window.cells_model.thumbnail(cell.id), caption, cell.probabilities, cell.label
            )
            return
        boxes = [
            FieldBox(
                other.id,
                tuple(other.box),
                f"{(other.label or 'excluded')} {other.confidence:.0%}",
                other.label,
                selected=other.id == cell.id,
            )
            for other in self.window.case.cells
            if other.source == cell.source and other.box
        ]
        scale = preview.shape[1] / field_width
        self.window.detail.show_field(pixmap_from_array(preview), scale, boxes, caption, cell.probabilities, cell.label)

    def add_drawn_box(self, box: list[int]) -> None:
        """A WBC the finder missed: crop it from the field, classify it, add it to the case."""
        if (
            self.window.case is None
            or self.window.current_cell_id is None
            or self.window.classifier is None
            or self.window.case.locked
        ):
            return
        source = self.window.case.cell(self.window.current_cell_id).source
        if not source:
            return

        field_rgb = load_image(source)
        crop = crop_cell(field_rgb, Detection(tuple(box), 1.0, 0.0))
        foreign = False
        if isinstance(
            self.window.classifier, LiteRTClassifier
        ):  # its scores say whether the stain-robust model called it
            rows, scores = self.window.classifier.analyse([crop])
            foreign = classified_by_robust(self.window.classifier, None if scores is None else float(scores[0]))
        else:
            rows = self.window.classifier.predict([crop])
        probs = {c: float(p) for c, p in zip(self.window.classifier.classes, rows[0], strict=True)}
        label = max(probs, key=probs.get)
        self.window.detail.draw_box.setChecked(False)
        self.window.unsaved.attempt("a cell you boxed", partial(self._save_drawn, source, box, label, probs, foreign))

    def _save_drawn(self, source: str, box: list[int], label: str, probs: dict, foreign: bool):
        cell = self.window.case.add_drawn_cell(source, box, label, probs, self.window.cases.who, foreign=foreign)
        self.window.cells_model.cells_added([cell], [None])
        self.select_cell(cell.id)
        self.window.refresh_differential()
        return cell

    def zoom_current(self) -> None:
        """The current cell at its original size (100 %, 200 % on 2), e.g. to look at granules."""
        if self.window.case is None or self.window.current_cell_id is None:
            return

        cell = self.window.case.cell(self.window.current_cell_id)
        try:
            if cell.source and cell.box:
                x0, y0, x1, y1 = cell.box
                pixels = load_image(cell.source)[y0:y1, x0:x1]
            else:
                pixels = load_image(cell.path)
        except ImageLoadError as error:
            self.window.statusBar().showMessage(f"The image cannot be shown: {error}", 5000)
            return
        self.zoom_dialog = ZoomDialog(pixels, Path(cell.path).name, self.window)
        self.zoom_dialog.open()

    def key_label(self, key: str) -> None:
        label = self.window.settings.key_map.get(key)
        if label in self.window.classes or label in self.window.settings.categories:
            self.label_current(label)
        elif label in self.window.settings.known_categories:
            self.window.statusBar().showMessage(
                f"Key {key} files into “{display_title(label)}”, which is not in use: Settings › Categories", 5000
            )

    def label_current(self, label: str | None, advance: bool = True) -> None:
        if self.window.current_cell_id is not None:
            self.reclassify([self.window.current_cell_id], label, advance=advance)

    def confirm_current(self) -> None:
        if self.window.current_cell_id is None or self.window.case is None:
            return
        cell = self.window.case.cell(self.window.current_cell_id)
        self.reclassify([cell.id], cell.label, advance=True)

    def reclassify(self, cell_ids: list[int], label: str | None, advance: bool = False) -> None:
        """Set the label of cells (``None`` excludes); saved at once, with an audit entry each. With ``advance``
        the next cell becomes current: the next in the same gallery column when the gallery is in front (the
        column the cell was in), else the next row of the table."""
        if self.window.case is None:
            return
        in_gallery = advance and len(cell_ids) == 1 and self.window.tabs.currentWidget() is self.window.gallery
        place = self.window.gallery.place_of(cell_ids[0]) if in_gallery else None
        before = {
            cell_id: (self.window.case.cell(cell_id).label, self.window.case.cell(cell_id).status)
            for cell_id in cell_ids
        }
        done: list[int] = []
        what = "exclusion" if label is None else f"{label} call"
        try:
            for cell_id in cell_ids:
                # a write that fails (database locked, disk full) is kept and retried: gui/unsaved.py
                if self.window.unsaved.attempt(f"{what} of cell {cell_id}", partial(self._save_label, cell_id, label)):
                    done.append(cell_id)
        except CaseLockedError as error:
            self.window.show_banner(str(error))
            return
        finally:
            if done:  # Ctrl+Z puts back exactly what was changed
                self.window.undo_stack.push(
                    LabelCommand(self.window, self.window.case, {c: before[c] for c in done}, label)
                )
        if place is not None:
            # each column's filter re-files the changed rows on dataChanged (dynamic filtering): re-filtering every
            # row of every column here cost ~10 ms a key on 100 cells and grew with the case
            self._advance_in_column(cell_ids[0], *place)
        elif advance and len(cell_ids) == 1:
            self._advance_from(cell_ids[0])
        elif self.window.current_cell_id in cell_ids:
            self._show_detail(self.window.current_cell_id)
        self.window.refresh_differential()

    def _save_label(self, cell_id: int, label: str | None) -> int:
        counts = self.window.settings.lab_categories.get(label) if label is not None else None
        self.window.case.set_label(cell_id, label, self.window.cases.who, counts)
        self.window.cells_model.cell_changed(cell_id)
        return cell_id

    def one_class_toggled(self, on: bool) -> None:
        """One class at a time: the current cell's column (else the first with cells) fills the gallery."""
        if not on:
            self.window.gallery.show_only(None)
            return
        place = self._current_place()
        groups = self.window.gallery.groups_with_cells()
        self.window.gallery.show_only(place[0] if place else (groups[0] if groups else None))

    def next_column(self, step: int = 1) -> None:
        """The first cell of the next (step 1) or previous (-1) column that has cells, e.g. the next class page."""
        groups = self.window.gallery.groups_with_cells()
        if not groups:
            return
        place = self._current_place()
        current = groups.index(place[0]) if place and place[0] in groups else -step
        group = groups[(current + step) % len(groups)]
        self.window.tabs.setCurrentWidget(self.window.gallery)
        self.select_cell(self.window.gallery.cell_ids(group)[0])
        self.window.gallery.columns[group].setFocus()

    def step_column(self, step: int) -> None:
        """Left/Right: the cell at the same height in the previous/next column that has cells (its last cell if
        it is shorter); the highlight and the keys go with it."""
        place = self._current_place()
        groups = self.window.gallery.groups_with_cells()
        if place is None or place[0] not in groups or self.window.gallery.shown_group is not None:
            return
        index = groups.index(place[0]) + step
        if not 0 <= index < len(groups):
            return
        ids = self.window.gallery.cell_ids(groups[index])
        self.select_cell(ids[min(place[1], len(ids) - 1)])
        self.window.gallery.columns[groups[index]].setFocus()

    def confirm_page(self) -> None:
        """Accept every model call shown in the current class column (the page the technician just looked at):
        the fast path for a clean sample. Never the Needs review or Excluded columns; undoable like a key."""
        if self.window.case is None or self.window.current_cell_id is None:
            return
        place = self.window.gallery.place_of(self.window.current_cell_id)
        if (
            place is None
            or place[0] not in self.window.classes
            or self.window.tabs.currentWidget() is not self.window.gallery
        ):
            self.window.statusBar().showMessage("Confirm page works on a class column of the gallery", 4000)
            return
        shown = self.window.gallery.visible_cell_ids(place[0])
        before = {
            cell_id: (self.window.case.cell(cell_id).label, self.window.case.cell(cell_id).status) for cell_id in shown
        }
        try:
            accepted = self.window.unsaved.attempt(
                f"confirm page ({len(shown)} cells)",
                partial(self.window.case.accept_page, shown, self.window.cases.who),
            )
        except CaseLockedError as error:
            self.window.show_banner(str(error))
            return
        if accepted is None:
            return
        for cell in accepted:
            self.window.cells_model.cell_changed(cell.id)
        if accepted:
            self.window.undo_stack.push(
                LabelCommand(self.window, self.window.case, {c.id: before[c.id] for c in accepted}, "page")
            )
        self.window.statusBar().showMessage(f"{len(accepted)} cells accepted on this page", 4000)
        self.window.gallery.invalidate()
        self.window.refresh_differential()

    def _advance_in_column(self, cell_id: int, group: str, row: int) -> None:
        """After acting on the cell at ``row`` of ``group``'s column: the cell now after it there (the same row
        if it left the column, the next if it stayed), else the column's last cell, else the cell itself."""
        ids = self.window.gallery.cell_ids(group)
        if cell_id in ids:
            row = ids.index(cell_id) + 1
        if ids and row >= len(ids):
            row = len(ids) - 1
        self.select_cell(ids[row] if ids and ids[row] != cell_id else cell_id)

    def _advance_from(self, cell_id: int) -> None:
        row = self.window.cells_model.row_of(cell_id)
        if row is not None and row + 1 < self.window.cells_model.rowCount():
            next_cell = self.window.cells_model.cell_at(row + 1)
            self.select_cell(next_cell.id)
        else:
            self._show_detail(cell_id)

    def _context_menu(self, view, position) -> None:
        index = view.indexAt(position)
        if not index.isValid():
            return
        ids = sorted(
            {i.data(CELL_ID_ROLE) for i in view.selectionModel().selectedIndexes()} | {index.data(CELL_ID_ROLE)}
        )
        self.cell_menu(ids).exec(view.viewport().mapToGlobal(position))

    def cell_menu(self, ids: list[int]) -> QMenu:
        """Reclassify the cells ``ids`` into any class, or a lab category in use (Settings › Categories), or exclude."""
        menu = QMenu(self.window)
        keys = {label: key for key, label in self.window.settings.key_map.items()}  # every class, with its key

        def entry(target, label: str) -> None:
            text = display_title(label) + (f"\t{keys[label]}" if label in keys else "")
            target.addAction(text, lambda: self.reclassify(ids, label))

        for label in self.window.classes:
            entry(menu, label)
        if self.window.settings.categories:
            others = menu.addMenu("Other categories")
            for label in self.window.settings.categories:
                entry(others, label)
        menu.addSeparator()
        menu.addAction(
            "Exclude (not counted: cut off, out of focus, not a cell)\tX", lambda: self.reclassify(ids, None)
        )
        return menu
