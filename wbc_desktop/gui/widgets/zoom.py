"""The current cell at its original resolution (100 % or 200 %): what a technician checks before deciding
between two classes (granules, nuclear chromatin), which a thumbnail or a fitted preview cannot show."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QButtonGroup, QDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout


class ZoomDialog(QDialog):
    def __init__(self, pixels: np.ndarray, title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{title} — original size")
        height, width = pixels.shape[:2]
        self.original = QPixmap.fromImage(
            QImage(np.ascontiguousarray(pixels).data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        )
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.image)
        scroll.setWidgetResizable(True)
        self.buttons = QButtonGroup(self)
        row = QHBoxLayout()
        for factor in (1, 2):
            button = QPushButton(f"{factor * 100} %")
            button.setCheckable(True)
            button.setShortcut(str(factor))
            self.buttons.addButton(button, factor)
            row.addWidget(button)
        row.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row.addWidget(close)
        self.buttons.idClicked.connect(self.show_at)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addLayout(row)
        self.resize(min(900, width * 2 + 60), min(640, height * 2 + 90))
        self.buttons.button(1).setChecked(True)
        self.show_at(1)

    def show_at(self, factor: int) -> None:
        self.factor = factor
        size = self.original.size() * factor
        self.image.setPixmap(self.original.scaled(size, Qt.AspectRatioMode.KeepAspectRatio))
