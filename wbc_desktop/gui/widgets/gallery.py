"""Gallery: thumbnails in one column per group (Review, each class, Excluded); drag a cell to reclassify."""

from __future__ import annotations

from PySide6.QtCore import (
    QByteArray,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.core.classes import display_title
from wbc_desktop.gui import style
from wbc_desktop.gui.models import CELL_ID_ROLE, EXCLUDED_GROUP, GROUP_ROLE, OTHER_GROUP, REVIEW_GROUP

CELL_MIME = "application/x-wbc-cell-ids"
# Thumbnails big enough to judge a cell (the table's 56 px are for finding one); a slider sets the size.
MIN_THUMBNAIL, DEFAULT_THUMBNAIL, MAX_THUMBNAIL = 64, 96, 128


def encode_cell_ids(ids: list[int]) -> QMimeData:
    mime = QMimeData()
    mime.setData(CELL_MIME, QByteArray(",".join(str(i) for i in ids).encode()))
    return mime


def decode_cell_ids(mime: QMimeData) -> list[int]:
    if not mime.hasFormat(CELL_MIME):
        return []
    text = bytes(mime.data(CELL_MIME).data()).decode()
    return [int(part) for part in text.split(",") if part.strip().isdigit()]


class GroupFilter(QSortFilterProxyModel):
    """The cells of one group, first column only."""

    def __init__(self, group: str, parent=None):
        super().__init__(parent)
        self.group = group
        self.setDynamicSortFilter(True)

    def filterAcceptsRow(self, source_row, source_parent) -> bool:
        return self.sourceModel().group_of_row(source_row) == self.group  # cached: asked per row and column

    def filterAcceptsColumn(self, source_column, source_parent) -> bool:
        return source_column == 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole:
            return None  # the thumbnail alone: a file name cut in the middle helped nobody (it is in the tooltip)
        return super().data(index, role)

    def mimeTypes(self) -> list[str]:
        return [CELL_MIME]

    def mimeData(self, indexes) -> QMimeData:
        return encode_cell_ids(sorted({index.data(CELL_ID_ROLE) for index in indexes}))


class CurrentCellFrame(QStyledItemDelegate):
    """Draws a thick frame round the highlighted thumbnail: the style's faint tint and thin underline were close
    to invisible on another lab's blue-grey cells."""

    def paint(self, painter, option, index) -> None:
        super().paint(painter, option, index)
        if option.state & QStyle.StateFlag.State_Selected:
            painter.save()
            painter.setPen(QPen(QColor(style.CURRENT_CELL), 3))
            painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
            painter.restore()


class GroupColumn(QListView):
    """A column of thumbnails that accepts cells dropped from another column."""

    cells_dropped = Signal(list, str)  # cell ids, target group
    step_column = Signal(int)  # Left (-1) / Right (+1) in a column one thumbnail wide: to the next column

    def __init__(self, group: str, parent=None):
        super().__init__(parent)
        self.group = group
        # Icons flow left to right and wrap: a narrow column shows one thumbnail per row, a wide one several.
        self.setViewMode(QListView.ViewMode.IconMode)
        self.set_thumbnail_size(DEFAULT_THUMBNAIL)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setAcceptDrops(group not in (REVIEW_GROUP, OTHER_GROUP))  # no single label to give a dropped cell
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setItemDelegate(CurrentCellFrame(self))

    def keyPressEvent(self, event) -> None:
        """Left and Right go to the neighbouring column when this one shows a thumbnail a row (in a class page
        several wide they move along the row, as the view does)."""
        key = event.key()
        one_wide = self.gridSize().width() * 2 > self.viewport().width()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and one_wide and not event.modifiers():
            self.step_column.emit(-1 if key == Qt.Key.Key_Left else 1)
            event.accept()
            return
        super().keyPressEvent(event)

    def set_thumbnail_size(self, side: int) -> None:
        self.setIconSize(QSize(side, side))
        self.setGridSize(QSize(side + 10, side + 10))
        self.setMinimumWidth(side + 10 + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth())

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(CELL_MIME) and self.group not in (REVIEW_GROUP, OTHER_GROUP):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        ids = decode_cell_ids(event.mimeData())
        if ids and self.group not in (REVIEW_GROUP, OTHER_GROUP):
            event.setDropAction(Qt.DropAction.CopyAction)  # the model, not the view, moves the cell
            event.accept()
            self.cells_dropped.emit(ids, self.group)
        else:
            event.ignore()


class Gallery(QWidget):
    """Side-by-side group columns with a header each showing the group's size."""

    reclassify_requested = Signal(list, object)  # cell ids, class name or None (exclude)

    def __init__(self, source_model, classes: tuple[str, ...], parent=None):
        super().__init__(parent)
        self.source_model = source_model
        self.columns: dict[str, GroupColumn] = {}
        self.holders: dict[str, QWidget] = {}
        self.shown_group: str | None = None  # one-class mode: the only column shown (a class page)
        self.headers: dict[str, QLabel] = {}
        self.filters: dict[str, GroupFilter] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Cell size"))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_THUMBNAIL, MAX_THUMBNAIL)
        self.size_slider.setValue(DEFAULT_THUMBNAIL)
        self.size_slider.setMinimumWidth(90)
        self.size_slider.setMaximumWidth(180)
        self.size_slider.setToolTip("Thumbnail size in the gallery; Z shows the current cell at full size")
        self.size_slider.valueChanged.connect(self.set_thumbnail_size)
        controls.addWidget(self.size_slider)
        self.one_class = QCheckBox("One class at a time")
        self.one_class.setToolTip(
            "Show only the current cell's column, as wide as the gallery (a class page): more cells on a page for "
            "Ctrl+Enter; Ctrl+Page Down / Ctrl+Page Up go to the next / previous column"
        )
        controls.addWidget(self.one_class)
        hint = QLabel("Keys act on the highlighted cell · Ctrl+Enter: accept the cells shown")
        hint.setStyleSheet(style.HINT)
        hint.setMinimumWidth(10)  # may be cut on a narrow window; never widens it
        controls.addWidget(hint, 1)
        outer.addLayout(controls)
        # Ten columns of 96 px cells are wider than a laptop's window: they scroll sideways instead of widening
        # the window past the screen (a 1280x720 screen cut it off).
        strip = QWidget()
        layout = QHBoxLayout(strip)
        layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidget(strip)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # each column scrolls itself
        outer.addWidget(scroll, 1)
        self.scroll = scroll
        for group in (REVIEW_GROUP, *classes, OTHER_GROUP, EXCLUDED_GROUP):
            holder = QWidget()  # header and column together, so that one-class mode can hide the others
            box = QVBoxLayout(holder)
            box.setContentsMargins(0, 0, 0, 0)
            header = QLabel()
            header.setAlignment(Qt.AlignmentFlag.AlignCenter)
            header.setStyleSheet(style.COLUMN_HEADER)
            # the count in the header changes with keys: its width must not re-lay out (and so repaint) all the
            # columns, so the header keeps room for a three-digit count (more digits widen it once: _fit_header)
            header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            proxy = GroupFilter(group, self)
            proxy.setSourceModel(source_model)
            column = GroupColumn(group)
            column.setModel(proxy)
            column.cells_dropped.connect(self._dropped)
            box.addWidget(header)
            box.addWidget(column, 1)
            layout.addWidget(holder, 1)
            self.holders[group] = holder
            self.columns[group], self.headers[group], self.filters[group] = column, header, proxy
            for signal in (proxy.rowsInserted, proxy.rowsRemoved, proxy.modelReset, proxy.layoutChanged):
                signal.connect(self._headers_later)
        # One header refresh per turn of the event loop: a key moves a cell out of one column and into another,
        # and a batch inserts rows into every column; each of those signals used to rewrite all the headers.
        self._header_timer = QTimer(self)
        self._header_timer.setSingleShot(True)
        self._header_timer.setInterval(0)
        self._header_timer.timeout.connect(self.refresh_headers)
        self.refresh_headers()

    def _dropped(self, ids: list[int], group: str) -> None:
        self.reclassify_requested.emit(ids, None if group == EXCLUDED_GROUP else group)

    def _headers_later(self, *args) -> None:
        self._header_timer.start()

    def refresh_headers(self) -> None:
        self._header_timer.stop()
        for group, header in self.headers.items():
            count = self.filters[group].rowCount()
            self._fit_header(header, group, len(str(count)))
            header.setText(f"{self._title(group)} ({count})")

    def _fit_header(self, header: QLabel, group: str, digits: int) -> None:
        reserve = max(3, digits)
        if header.property("digits") != reserve:
            header.setProperty("digits", reserve)
            header.setMinimumWidth(
                header.fontMetrics().horizontalAdvance(f"{self._title(group)} ({'0' * reserve})") + 8
            )

    @staticmethod
    def _title(group: str) -> str:
        return {REVIEW_GROUP: "Needs review", OTHER_GROUP: "Other categories"}.get(group) or display_title(group)

    def set_thumbnail_size(self, side: int) -> None:
        for column in self.columns.values():
            column.set_thumbnail_size(side)

    def show_only(self, group: str | None) -> None:
        """One-class mode on one column (a class page as wide as the gallery), or all columns with None."""
        self.shown_group = group
        for name, holder in self.holders.items():
            holder.setVisible(group is None or name == group)

    def groups_with_cells(self) -> list[str]:
        return [group for group in self.filters if self.filters[group].rowCount()]

    def cell_ids(self, group: str) -> list[int]:
        """The cells of a column, top to bottom."""
        proxy = self.filters[group]
        return [proxy.index(row, 0).data(CELL_ID_ROLE) for row in range(proxy.rowCount())]

    def visible_cell_ids(self, group: str) -> list[int]:
        """The cells of a column whose thumbnails are wholly on screen: inside the column's viewport and inside
        the part of the gallery scrolled into view (what the technician can see now; nothing half hidden)."""
        column, proxy = self.columns[group], self.filters[group]
        if not column.isVisible():
            return []
        shown = self.scroll.viewport().rect()
        seen = []
        for row in range(proxy.rowCount()):
            rect = column.visualRect(proxy.index(row, 0))
            on_gallery = rect.translated(
                column.viewport().mapTo(self.scroll.viewport(), rect.topLeft()) - rect.topLeft()
            )
            if column.viewport().rect().contains(rect) and shown.contains(on_gallery):
                seen.append(proxy.index(row, 0).data(CELL_ID_ROLE))
        return seen

    def place_of(self, cell_id: int) -> tuple[str, int] | None:
        """The column a cell is in (its group, as the cells model says) and its row there."""
        row = self.source_model.row_of(cell_id)
        if row is None:
            return None
        source = self.source_model.index(row, 0)
        group = source.data(GROUP_ROLE)
        index = self.filters[group].mapFromSource(source) if group in self.filters else QModelIndex()
        return (group, index.row()) if index.isValid() else None

    def show_current(self, cell_id: int, source_index) -> None:
        """Highlight the cell in the column that holds it and in no other (one current cell in the window)."""
        for group, column in self.columns.items():
            proxy_index = self.filters[group].mapFromSource(source_index)
            selection = column.selectionModel()
            if proxy_index.isValid():
                selection.setCurrentIndex(proxy_index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                column.scrollTo(proxy_index)
                self.scroll.ensureWidgetVisible(self.holders[group], 0, 0)  # the column too, not only its row
            elif selection.hasSelection() or selection.currentIndex().isValid():  # untouched columns not repainted
                selection.clearSelection()
                selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)

    def invalidate(self) -> None:
        """Re-sort cells into groups after labels or the threshold changed."""
        for proxy in self.filters.values():
            proxy.invalidate()
        self.refresh_headers()
