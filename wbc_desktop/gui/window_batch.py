"""Getting images into the main window: drops, the open dialogs, recent folders; the batch itself runs in the
window's BatchRunner part (gui/batch_runner.py)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
)

from wbc_desktop.gui import settings_store


class BatchActions:
    """Mixin for MainWindow: getting images in (the BatchRunner part classifies them)."""

    # --- loading and classification ------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.classify_paths(paths)

    def open_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "", "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff);;All files (*)"
        )
        if files:
            self.classify_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder")
        if folder:
            self.classify_paths([folder])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in settings_store.recent_folders():
            self._action(self.recent_menu, folder, lambda checked=False, f=folder: self.classify_paths([f]))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def classify_paths(self, paths: list[str]) -> None:
        """Add images to the current case (a new case if none or signed); runs in the background."""
        for path in paths:
            if Path(path).is_dir():
                settings_store.remember_folder(str(Path(path).resolve()))
        self._fill_recent()
        if self.model_error is not None:
            self.show_banner(f"The model cannot be used: {self.model_error}")
            return
        self.batch.start(paths)

    def _add_problems(self, problems: list[tuple[str, str]]) -> None:
        self.batch.add_problems(problems)

    def update_problem_tab(self) -> None:
        self.tabs.setTabText(2, f"Problems ({self.problems.count()})")

    def cancel(self) -> None:
        """Stop the running batch at once; what was classified so far stays in the case (BatchRunner.cancel)."""
        self.batch.cancel()

    def refresh_differential(self) -> None:
        from wbc_desktop.core.differential import summarize

        if self.case is None:
            differential = summarize([], reference_ranges=self.settings.reference_ranges)
            review, needs = {}, 0
        else:
            differential = self.case.differential(self.classes, self.settings.reference_ranges)
            review = self.case.review_counts()
            needs = sum(cell.needs_review(self.review_threshold) for cell in self.case.cells)
        self.differential_panel.show_differential(differential, review, needs)
        self.gallery.refresh_headers()
        self.differential_updated.emit()

    def _load_thumbnails_later(self) -> None:
        """Resumed cases have no thumbnails in memory: make them in the background."""
        if self.case is None or not self.case.cells:
            return
        from wbc_desktop.gui.thumbnails import ThumbnailTask

        task = ThumbnailTask([(cell.id, cell.path) for cell in self.case.cells])
        task.signals.thumbnail.connect(
            lambda cell_id, image: self.cells_model.set_thumbnail(cell_id, QPixmap.fromImage(image))
        )
        self._thumbnail_task = task
        self.pool.start(task)
