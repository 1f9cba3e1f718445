"""The case header: sample ID, operator, date, sign-out state."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from wbc_desktop.core.records import CaseInfo


class CaseBar(QWidget):
    details_changed = Signal(str, str)  # sample id, operator
    collected_changed = Signal(str)  # when the sample was taken, as typed
    sign_out_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sample = QLineEdit()
        self.sample.setPlaceholderText("Sample ID")
        self.operator = QLineEdit()
        self.operator.setPlaceholderText("Operator")
        self.collected = QLineEdit()
        self.collected.setPlaceholderText("YYYY-MM-DD HH:MM")
        self.collected.setToolTip("When the sample was collected (printed on the report and sent to the LIS)")
        self.collected.setMaximumWidth(140)
        self.date = QLabel("")
        self.state = QLabel("No case open: drop images or folders anywhere on the window")
        self.sign_out = QPushButton("Sign out…")
        self.sign_out.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        for text, widget in (("Sample", self.sample), ("Operator", self.operator), ("Collected", self.collected)):
            layout.addWidget(QLabel(text))
            layout.addWidget(widget)
        layout.addWidget(self.date)
        layout.addStretch(1)
        layout.addWidget(self.state)
        layout.addWidget(self.sign_out)
        self.sample.editingFinished.connect(self._emit_details)
        self.operator.editingFinished.connect(self._emit_details)
        self.collected.editingFinished.connect(lambda: self.collected_changed.emit(self.collected.text().strip()))
        self.sign_out.clicked.connect(self.sign_out_requested)

    def commit_edits(self) -> None:
        self._emit_details()

    def _emit_details(self) -> None:
        self.details_changed.emit(self.sample.text().strip(), self.operator.text().strip())

    def show_case(self, info: CaseInfo | None) -> None:
        editable = info is not None and not info.signed
        self.sample.setText(info.sample_id if info else "")
        self.operator.setText(info.operator if info else self.operator.text())
        self.collected.setText((info.collected or "").replace("T", " ") if info else "")
        self.sample.setReadOnly(not editable)
        self.operator.setReadOnly(not editable)
        self.collected.setReadOnly(not editable)
        self.sign_out.setEnabled(editable)
        self.date.setText(info.created[:16].replace("T", " ") if info else "")
        if info is None:
            self.state.setText("No case open: drop images or folders anywhere on the window")
        elif info.signed:
            self.state.setText(f"🔒 Signed out by {info.signed_by} at {info.signed_at[:16].replace('T', ' ')}")
        else:
            self.state.setText("Open · every change is saved as you make it")
