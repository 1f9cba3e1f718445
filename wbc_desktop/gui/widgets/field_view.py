"""A smear field with its WBC boxes drawn and labelled; click a box to select its cell, drag to draw a missed one."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from wbc_desktop.gui import style


@dataclass
class FieldBox:
    cell_id: int
    box: tuple[int, int, int, int]  # field pixels
    text: str
    label: str | None
    selected: bool = False


class FieldView(QGraphicsView):
    box_clicked = Signal(int)  # cell id
    box_drawn = Signal(list)  # [x0, y0, x1, y1] in field pixels

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumSize(180, 180)
        self.scale_factor = 1.0  # preview pixels per field pixel
        self.boxes: list[FieldBox] = []
        self.drawing = False
        self._start: QPointF | None = None
        self._rubber = None

    def show_field(self, pixmap: QPixmap, scale_factor: float, boxes: list[FieldBox]) -> None:
        scene = self.scene()
        scene.clear()
        self._rubber = None
        self.scale_factor, self.boxes = scale_factor, boxes
        scene.addPixmap(pixmap)
        scene.setSceneRect(QRectF(pixmap.rect()))
        font = QFont()
        font.setPixelSize(max(12, pixmap.width() // 32))  # readable once the field is fitted into the view
        font.setBold(True)
        tag_height = font.pixelSize() + 6
        for item in boxes:
            x0, y0, x1, y1 = (v * scale_factor for v in item.box)
            colour = QColor(style.class_colour(item.label))
            pen = QPen(colour, 4 if item.selected else 2)
            pen.setCosmetic(True)  # line width in screen pixels, whatever the zoom
            if item.label is None:
                pen.setStyle(Qt.PenStyle.DashLine)  # excluded / deleted box stays visible, dashed
            scene.addRect(QRectF(x0, y0, x1 - x0, y1 - y0), pen)
            tag = scene.addSimpleText(item.text, font)
            tag.setBrush(QBrush(QColor("white")))
            background = scene.addRect(tag.boundingRect().adjusted(-2, -1, 2, 1), QPen(Qt.PenStyle.NoPen), colour)
            background.setPos(x0, max(0.0, y0 - tag_height))
            tag.setPos(x0, max(0.0, y0 - tag_height))
            tag.setZValue(2)
            background.setZValue(1)
        self.fitInView(scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.scene().items():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def field_point(self, view_pos) -> tuple[float, float]:
        point = self.mapToScene(view_pos)
        return point.x() / self.scale_factor, point.y() / self.scale_factor

    def box_at(self, x: float, y: float) -> int | None:
        """The smallest box containing the field point (nested boxes: the inner one wins)."""
        inside = [b for b in self.boxes if b.box[0] <= x <= b.box[2] and b.box[1] <= y <= b.box[3]]
        if not inside:
            return None
        return min(inside, key=lambda b: (b.box[2] - b.box[0]) * (b.box[3] - b.box[1])).cell_id

    def mousePressEvent(self, event) -> None:
        if self.drawing and event.button() == Qt.MouseButton.LeftButton:
            self._start = self.mapToScene(event.position().toPoint())
            self._rubber = self.scene().addRect(
                QRectF(self._start, self._start), QPen(QColor(style.INK), 2, Qt.PenStyle.DotLine)
            )
            return
        cell_id = self.box_at(*self.field_point(event.position().toPoint()))
        if cell_id is not None:
            self.box_clicked.emit(cell_id)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self.drawing and self._start is not None and self._rubber is not None:
            self._rubber.setRect(QRectF(self._start, self.mapToScene(event.position().toPoint())).normalized())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self.drawing and self._start is not None:
            end = self.mapToScene(event.position().toPoint())
            rect = QRectF(self._start, end).normalized()
            self._start = None
            if rect.width() > 8 and rect.height() > 8:
                f = self.scale_factor
                self.box_drawn.emit(
                    [round(rect.left() / f), round(rect.top() / f), round(rect.right() / f), round(rect.bottom() / f)]
                )
            return
        super().mouseReleaseEvent(event)
