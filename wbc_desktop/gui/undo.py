"""Undo and redo of what a technician does to cells (reclassify, exclude, confirm), on Qt's QUndoStack: every
undo and redo is saved and audited like the change itself."""

from __future__ import annotations

from functools import partial

from PySide6.QtGui import QUndoCommand

from wbc_desktop.core.case import Case
from wbc_desktop.core.records import CaseLockedError


class LabelCommand(QUndoCommand):
    """Cells given one label (None excludes). Pushed after the change was made, so the first redo does nothing."""

    def __init__(self, window, case: Case, before: dict[int, tuple[str | None, str]], label: str | None):
        count = len(before)
        what = "exclude" if label is None else f"{label}"
        super().__init__(f"{what} ({count} cell{'s' if count != 1 else ''})")
        self.window, self.case, self.before, self.label = window, case, before, label
        self.after = {cell_id: (case.cell(cell_id).label, case.cell(cell_id).status) for cell_id in before}
        self._done = True

    def undo(self) -> None:
        self._apply(self.before, "undo")

    def redo(self) -> None:
        if self._done:  # QUndoStack.push() calls redo(): the change is already saved
            self._done = False
            return
        self._apply(self.after, "redo")

    def _restore(self, cell_id: int, label: str | None, status: str, action: str) -> int:
        self.case.restore(cell_id, label, status, self.window.cases.who, action)
        self.window.cells_model.cell_changed(cell_id)
        return cell_id

    def _apply(self, states: dict[int, tuple[str | None, str]], action: str) -> None:
        try:
            for cell_id, (label, status) in states.items():
                self.window.unsaved.attempt(
                    f"{action} of cell {cell_id}", partial(self._restore, cell_id, label, status, action)
                )
        except CaseLockedError as error:  # signed in another window since: nothing more can change
            self.window.show_banner(str(error))
        self.window.gallery.invalidate()
        self.window.review.select_cell(next(iter(states)))
        self.window.refresh_differential()
