"""Qt item models over a case: the cells (table and gallery) and the differential."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap

from wbc_desktop.core.case import Case
from wbc_desktop.core.classes import display_title
from wbc_desktop.core.differential import Differential
from wbc_desktop.core.images import display_text
from wbc_desktop.core.records import Cell
from wbc_desktop.gui import style

CELL_ID_ROLE = Qt.ItemDataRole.UserRole + 1
GROUP_ROLE = Qt.ItemDataRole.UserRole + 2
REVIEW_GROUP = "review"
EXCLUDED_GROUP = "excluded"
OTHER_GROUP = "other"  # the gallery's column for a lab's extra categories (blast, smudge cell, …)

STATUS_TEXT = {
    "auto": "model call",
    "reviewed": "reviewed",
    "reclassified": "reclassified",
    "excluded": "excluded",
    "accepted": "accepted (page)",
}

Index = QModelIndex | QPersistentModelIndex


class ColumnsModel(QAbstractTableModel):
    """A flat table whose column titles are the class attribute ``COLUMNS``."""

    COLUMNS: tuple[str, ...] = ()

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None


class CellTableModel(ColumnsModel):
    """One row per cell of the current case: thumbnail + file, class, confidence, status."""

    COLUMNS = ("File", "Class", "Confidence", "Status")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.case: Case | None = None
        self.threshold = 0.9
        self._thumbnails: dict[int, QPixmap] = {}
        self._row_of: dict[int, int] = {}
        # Each cell's gallery column, computed once: every column's filter asks for every row it is shown, and a
        # Cancel that brought in 1,744 queued cells asked 19,184 times (0.6 s of review rules) before this cache.
        self._group_of: dict[int, str] = {}

    # --- feeding -------------------------------------------------------------------------------------------
    def set_case(self, case: Case | None) -> None:
        self.beginResetModel()
        self.case = case
        self._thumbnails.clear()
        self._group_of.clear()
        self._row_of = {cell.id: row for row, cell in enumerate(case.cells)} if case else {}
        self.endResetModel()

    def cells_added(self, cells: list[Cell], thumbnails: list[QPixmap | None]) -> None:
        """Call after ``case.add_results`` appended ``cells`` (one row insertion for the whole block)."""
        assert self.case is not None
        last = len(self.case.cells) - 1
        first = last - len(cells) + 1
        self.beginInsertRows(QModelIndex(), first, last)
        for offset, (cell, thumbnail) in enumerate(zip(cells, thumbnails, strict=True)):
            self._row_of[cell.id] = first + offset
            if thumbnail is not None:
                self._thumbnails[cell.id] = thumbnail
        self.endInsertRows()

    def set_thumbnail(self, cell_id: int, thumbnail: QPixmap) -> None:
        self._thumbnails[cell_id] = thumbnail
        row = self._row_of.get(cell_id)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def cell_changed(self, cell_id: int) -> None:
        self._group_of.pop(cell_id, None)
        row = self._row_of.get(cell_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self._group_of.clear()
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(self.COLUMNS) - 1))

    # --- lookup ----------------------------------------------------------------------------------------------
    def cell_at(self, row: int) -> Cell | None:
        if self.case is None or not 0 <= row < len(self.case.cells):
            return None
        return self.case.cells[row]

    def row_of(self, cell_id: int) -> int | None:
        return self._row_of.get(cell_id)

    def group_of_row(self, row: int) -> str | None:
        """The gallery column of the cell at ``row`` (cached until the cell, the threshold or the case changes)."""
        cell = self.cell_at(row)
        if cell is None:
            return None
        group = self._group_of.get(cell.id)
        if group is None:
            group = self._group_of[cell.id] = self.group_of(cell)
        return group

    def set_column_classes(self, classes: tuple[str, ...]) -> None:
        self.column_classes = classes
        self._group_of.clear()

    def group_of(self, cell: Cell) -> str:
        if cell.needs_review(self.threshold):
            return REVIEW_GROUP
        if cell.label is None:
            return EXCLUDED_GROUP
        return cell.label if cell.label in self.column_classes else OTHER_GROUP

    column_classes: tuple[str, ...] = ()  # the classes with a gallery column of their own (set by the window)

    def thumbnail(self, cell_id: int) -> QPixmap | None:
        return self._thumbnails.get(cell_id)

    # --- Qt model API ----------------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() or self.case is None else len(self.case.cells)

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        cell = self.cell_at(index.row()) if index.isValid() else None
        if cell is None:
            return None
        column = index.column()
        if role == CELL_ID_ROLE:
            return cell.id
        if role == GROUP_ROLE:
            return self.group_of_row(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return display_text(cell.path).replace("\\", "/").rsplit("/", 1)[-1]
            if column == 1:
                return cell.label or "excluded"
            if column == 2:
                return f"{cell.confidence:.1%}"
            if column == 3:
                text = STATUS_TEXT.get(cell.status, cell.status)
                return "needs review" if cell.needs_review(self.threshold) else text
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            pixmap = self._thumbnails.get(cell.id)
            return QIcon(pixmap) if pixmap is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return display_text(cell.source or cell.path)
        if role == Qt.ItemDataRole.ForegroundRole and column == 3 and cell.needs_review(self.threshold):
            return QBrush(QColor(style.NEEDS_REVIEW))
        return None


class DifferentialModel(ColumnsModel):
    """The differential table: per class count, %, 95 % CI, absolute count, reference, flag."""

    # The flag beside the percentage: as the last column it sat off screen at 1280x720 behind a sideways scroll
    COLUMNS = ("Class", "Count", "%", "Flag", "95% CI", "×10⁹/L", "Reference %")
    FLAG_COLUMN = 3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.differential: Differential | None = None

    def set_differential(self, differential: Differential) -> None:
        if differential == self.differential:  # a confirmed call changes no count: no reset, no repaint
            return
        self.beginResetModel()
        self.differential = differential
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() or self.differential is None else len(self.differential.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.differential is None:
            return None
        row = self.differential.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            values = (
                display_title(row.label),
                str(row.count),
                f"{row.percent:.1f}",
                row.flag,
                f"{row.ci_low:.1f}–{row.ci_high:.1f}" if self.differential.total else "–",
                f"{row.absolute:.2f}" if row.absolute is not None else "",
                f"{row.reference[0]:g}–{row.reference[1]:g}" if row.reference else "",
            )
            return values[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column == self.FLAG_COLUMN and row.flag:
            return QBrush(QColor(style.HIGH if row.flag == "H" else style.LOW))
        return None
