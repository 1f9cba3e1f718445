"""The audit trail of a case: a sortable, scrollable table of every change, filterable by cell."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QTableView, QVBoxLayout

from wbc_desktop.core.records import AuditEntry

COLUMNS = ("When", "Who", "Action", "Cell", "From", "To")


class AuditDialog(QDialog):
    """Fits a laptop screen whatever the number of entries (it scrolls); typing a cell number filters."""

    def __init__(self, entries: list[AuditEntry], title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Audit trail: {title}")
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        for entry in entries:
            values = (
                entry.at.replace("T", " "),
                entry.who,
                entry.action,
                "" if entry.cell_id is None else str(entry.cell_id),
                entry.from_label or "—",
                entry.to_label or "—",
            )
            self.model.appendRow([QStandardItem(value) for value in values])
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(COLUMNS.index("Cell"))
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.resizeColumnsToContents()
        self.cell_filter = QLineEdit()
        self.cell_filter.setPlaceholderText("cell number (empty: all)")
        self.cell_filter.setClearButtonEnabled(True)
        self.cell_filter.textChanged.connect(self._filter)
        self.count = QLabel()
        row = QHBoxLayout()
        row.addWidget(QLabel("Only cell"))
        row.addWidget(self.cell_filter)
        row.addStretch(1)
        row.addWidget(self.count)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(760, 460)  # within a 1280x720 screen, OK button included; the table scrolls
        self._filter("")

    def _filter(self, text: str) -> None:
        text = text.strip()
        self.proxy.setFilterRegularExpression(f"^{text}$" if text.isdigit() else "")
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} entries")
