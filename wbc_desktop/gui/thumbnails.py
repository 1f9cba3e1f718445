"""Thumbnails for a resumed case, made in the background (the worker makes them for new cells)."""

from __future__ import annotations

import threading

from PySide6.QtCore import QRunnable

from wbc_desktop.core.images import ImageLoadError, load_preview
from wbc_desktop.gui.worker import THUMBNAIL_SIZE, TaskSignals, thumbnail_image


class ThumbnailTask(QRunnable):
    def __init__(self, cells: list[tuple[int, str]]):
        super().__init__()
        self.cells = cells
        self.signals = TaskSignals()  # yielded: (cell id, QImage)
        self.stop = threading.Event()

    def run(self) -> None:
        for cell_id, path in self.cells:
            if self.stop.is_set():
                return
            try:
                image = thumbnail_image(load_preview(path, THUMBNAIL_SIZE * 2))
            except ImageLoadError:
                continue
            self.signals.yielded.emit((cell_id, image))
