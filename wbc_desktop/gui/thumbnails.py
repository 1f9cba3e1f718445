"""Thumbnails for a resumed case, made in the background (the worker makes them for new cells)."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QRunnable, Signal

from wbc_desktop.core.images import ImageLoadError, load_preview
from wbc_desktop.gui.worker import THUMBNAIL_SIZE, thumbnail_image


class ThumbnailSignals(QObject):
    thumbnail = Signal(int, object)  # cell id, QImage


class ThumbnailTask(QRunnable):
    def __init__(self, cells: list[tuple[int, str]]):
        super().__init__()
        self.cells = cells
        self.signals = ThumbnailSignals()
        self.stop = threading.Event()

    def run(self) -> None:
        for cell_id, path in self.cells:
            if self.stop.is_set():
                return
            try:
                image = thumbnail_image(load_preview(path, THUMBNAIL_SIZE * 2))
            except ImageLoadError:
                continue
            self.signals.thumbnail.emit(cell_id, image)
