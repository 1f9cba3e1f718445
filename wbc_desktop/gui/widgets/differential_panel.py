"""The differential: the table (over DifferentialModel), progress toward the target, and the WBC count."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.core.classes import display_title
from wbc_desktop.core.differential import Differential
from wbc_desktop.core.status import Status
from wbc_desktop.gui import style
from wbc_desktop.gui.models import DifferentialModel


class DifferentialPanel(QWidget):
    wbc_count_changed = Signal(object)  # float or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = DifferentialModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(130)  # scrolls on a laptop; grows with the window
        self.target = QProgressBar()
        self.target.setFormat("%v of %m cells counted")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)  # long notes wrap instead of widening the window past a laptop's screen
        self.wbc_count = QDoubleSpinBox()
        self.wbc_count.setRange(0.0, 500.0)
        self.wbc_count.setDecimals(2)
        self.wbc_count.setSpecialValueText("not entered")
        self.wbc_count.setSuffix(" ×10⁹/L")
        self.wbc_count.valueChanged.connect(self._wbc_changed)
        form = QFormLayout()
        form.addRow("Total WBC count", self.wbc_count)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.target)
        layout.addLayout(form)
        layout.addWidget(self.summary)

    def _wbc_changed(self, value: float) -> None:
        self.wbc_count_changed.emit(value if value > 0 else None)

    def set_wbc_count(self, value: float | None) -> None:
        self.wbc_count.blockSignals(True)
        self.wbc_count.setValue(value or 0.0)
        self.wbc_count.blockSignals(False)

    def show_differential(self, differential: Differential, review: dict[str, int], needs_review: int) -> bool:
        """Show the differential; whether the target is reached (counted, and every call verified by a person)."""
        self.model.set_differential(differential)
        self.target.setMaximum(differential.target)
        self.target.setValue(min(differential.total, differential.target))
        self.target.setFormat(f"{differential.total} of {differential.target} cells counted")
        waiting = review.get(Status.AUTO, 0)  # model calls no person verified yet
        reached = differential.total >= differential.target and not waiting
        sheet = style.TARGET_REACHED if reached else ""
        if self.target.styleSheet() != sheet:  # setting a style sheet re-polishes the widget: only on a change
            self.target.setStyleSheet(sheet)
        if reached:
            self.target.setFormat(f"Target reached: {differential.total} of {differential.target} cells counted")
        elif differential.total >= differential.target:  # counted, but not yet by a person: not green
            self.target.setFormat(
                f"{differential.total} of {differential.target} counted · {waiting} model call(s) still to verify"
            )
        outside = "".join(
            f"\n{display_title(row.label)} {row.flag}: not certain at this count (its 95 % interval spans the "
            + (f"limit): count {row.more_to_decide} more to decide" if row.more_to_decide else "limit)")
            for row in differential.rows
            if row.undecided
        )
        if differential.ig_total is not None:
            outside += f"\nImmature granulocytes, all (IG with its sub-types): {differential.ig_total[0]} "
            outside += f"({differential.ig_total[1]:.1f} %) {differential.ig_flag}"
        for label, count in differential.non_wbc.items():
            per_100 = differential.per_100_wbc(label)
            outside += f"\n{display_title(label)}: {count} ({'–' if per_100 is None else f'{per_100:.1f}'}"
            outside += " per 100 WBC, not in the differential)"
        if differential.corrected_wbc_count is not None:
            used = "used" if differential.wbc_count_corrected else "not applied below 5 NRBC/100 WBC"
            outside += f"\nWBC count corrected for NRBC: {differential.corrected_wbc_count:.2f} ×10⁹/L ({used})"
        self.summary.setText(
            f"Excluded: {differential.excluded} · needs review: {needs_review} · reviewed: "
            f"{review.get('reviewed', 0)} · reclassified: {review.get('reclassified', 0)}{outside}"
        )
        return reached
