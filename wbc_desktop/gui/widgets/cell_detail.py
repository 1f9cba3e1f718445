"""The selected cell, large, with one bar per class (probability in %)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from wbc_desktop.gui import style
from wbc_desktop.gui.widgets.field_view import FieldView


class ProbabilityBars(QWidget):
    """Horizontal bars, one per class, the predicted class emphasised."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.probabilities: dict[str, float] = {}
        self.label: str | None = None
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_probabilities(self, probabilities: dict[str, float], label: str | None) -> None:
        self.probabilities, self.label = dict(probabilities), label
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(300, 26 * max(5, len(self.probabilities)) + 4)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        row_height = 24
        name_width, value_width = 90, 56
        bar_width = max(10, self.width() - name_width - value_width - 8)
        items = sorted(self.probabilities.items(), key=lambda item: -item[1])
        for i, (name, probability) in enumerate(items):
            top = 2 + i * (row_height + 2)
            font = painter.font()
            font.setBold(name == self.label)
            painter.setFont(font)
            painter.setPen(QColor(style.INK))
            painter.drawText(QRectF(0, top, name_width, row_height), Qt.AlignmentFlag.AlignVCenter, name)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(style.TRACK))
            painter.drawRoundedRect(QRectF(name_width, top + 4, bar_width, row_height - 8), 3, 3)
            painter.setBrush(QColor(style.class_colour(name)))
            painter.drawRoundedRect(QRectF(name_width, top + 4, bar_width * probability, row_height - 8), 3, 3)
            painter.setPen(QColor(style.INK))
            painter.drawText(
                QRectF(name_width + bar_width + 4, top, value_width, row_height),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                f"{probability * 100:.1f} %",
            )
        painter.end()


class CellDetail(QWidget):
    """Large image of the selected cell, its file and status, and the probability bars."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image = QLabel("Select a cell")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(180, 180)  # small enough for a 1280x720 laptop; it grows with the window
        self.image.setStyleSheet(style.IMAGE_FRAME)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.bars = ProbabilityBars()
        self.field = FieldView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.image)
        self.stack.addWidget(self.field)
        self.delete_box = QPushButton("Delete box (not a WBC)")
        self.draw_box = QPushButton("Draw a missed WBC")
        self.draw_box.setCheckable(True)
        self.draw_box.toggled.connect(lambda on: setattr(self.field, "drawing", on))
        self.field_buttons = QWidget()
        buttons = QHBoxLayout(self.field_buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.delete_box)
        buttons.addWidget(self.draw_box)
        self.field_buttons.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.field_buttons)
        layout.addWidget(self.caption)
        layout.addWidget(self.bars)
        self._pixmap: QPixmap | None = None

    def show_field(self, pixmap: QPixmap, scale_factor: float, boxes, caption: str, probabilities, label) -> None:
        """A cell found in a field: the whole field with every box, this cell's one emphasised."""
        self.stack.setCurrentWidget(self.field)
        self.field_buttons.setVisible(True)
        self.field.show_field(pixmap, scale_factor, boxes)
        self.caption.setText(caption)
        self.bars.set_probabilities(probabilities, label)

    def show_cell(self, pixmap: QPixmap | None, caption: str, probabilities: dict[str, float], label) -> None:
        self.stack.setCurrentWidget(self.image)
        self.field_buttons.setVisible(False)
        self.draw_box.setChecked(False)
        self._pixmap = pixmap
        self._rescale()
        if pixmap is None:
            self.image.setText("(image not available)")
        self.caption.setText(caption)
        self.bars.set_probabilities(probabilities, label)

    def clear(self) -> None:
        """Nothing selected: no field, no field buttons, no drawing mode left from the previous cell or case."""
        self.stack.setCurrentWidget(self.image)
        self.field_buttons.setVisible(False)
        self.draw_box.setChecked(False)
        self._pixmap = None
        self.image.clear()
        self.image.setText("Select a cell")
        self.caption.setText("")
        self.bars.set_probabilities({}, None)

    def _rescale(self) -> None:
        if self._pixmap is not None and not self._pixmap.isNull():
            self.image.setPixmap(
                self._pixmap.scaled(
                    self.image.size() - QSize(4, 4),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()
