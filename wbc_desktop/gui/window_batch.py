"""Loading and background classification for the main window: drops, dialogs, the worker queue, cancel."""

from __future__ import annotations

import queue
import time
from functools import partial
from pathlib import Path

from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
)

from wbc_desktop.core.images import display_text
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.worker import ClassifyTask, Finished
from wbc_desktop.inference.litert import classified_by_robust

# Results are moved into the case on a timer, at most this long per tick, so the window never stutters.
DRAIN_INTERVAL_MS = 40
DRAIN_BUDGET_S = 0.020
DRAIN_MAX_ITEMS = 32  # bounds the SQLite insert and the model update done per tick
REFRESH_INTERVAL_S = 0.25


class BatchActions:
    """Mixin for MainWindow: getting images in and results out of the worker."""

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
        if self.classifier is None or self.task is not None:
            self.pending_inputs.extend(paths)  # runs when the model is ready / the batch is done
            return
        if (self.case is None or self.case.locked) and self.new_case() is None:
            return  # the banner says why no case could be made; nothing was started
        elif not self.case.info.model:
            self.unsaved.attempt("the model's name in the case", partial(self.case.set_model, self.model_info()))
        self.task = ClassifyTask(list(paths), self.classifier, mode=self.settings.mode)
        self.task.signals.discovered.connect(self._discovered)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.rate.setText("finding images…")
        self.pool.start(self.task)
        self.drain_timer.start()

    def _discovered(self, total: int, errors: list) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(0)
        self._add_problems(errors)

    def _drain(self, budget_s: float | None = DRAIN_BUDGET_S) -> None:
        """Move finished results from the worker's queue into the case, within a time budget per tick
        (``budget_s=None``: everything queued, as on Cancel)."""
        task = self.task
        if task is None or self.case is None:
            self.drain_timer.stop()
            return
        deadline = time.monotonic() + budget_s if budget_s is not None else float("inf")
        limit = DRAIN_MAX_ITEMS if budget_s is not None else float("inf")
        results, finished = [], None
        while time.monotonic() < deadline and len(results) < limit:
            try:
                item = task.results.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Finished):
                finished = item
                break
            results.append(item)
        good = [(r, thumb) for r, thumb in results if r.ok]
        if good:
            rows = [
                (
                    str(r.path),
                    r.label,
                    r.probabilities,
                    str(r.source) if r.source else None,
                    r.box,
                    classified_by_robust(self.classifier, r.domain_score),  # such calls wait for review
                )
                for r, _ in good
            ]
            pixmaps = [QPixmap.fromImage(thumb) if thumb is not None else None for _, thumb in good]
            # kept and retried if the database cannot take them now (gui/unsaved.py): results are never dropped
            self.unsaved.attempt(f"{len(rows)} classified cell(s)", partial(self._store_results, rows, pixmaps))
        self._add_problems([(str(r.path), r.error or "unknown error") for r, _ in results if not r.ok])
        self.processed += sum(r.first_of_image for r, _ in results)
        self.domain_scores.extend(r.domain_score for r, _ in good if r.domain_score is not None)
        self.lab.check_domain()
        rate = self.processed / max(time.monotonic() - task.started, 1e-6)
        self.progress.setValue(self.processed)
        self.rate.setText(f"{self.processed}/{task.total} · {rate:.0f} images/s")
        if results and time.monotonic() - self._last_refresh > REFRESH_INTERVAL_S:
            self.refresh_differential()  # live, but not on every tick: the end of the batch refreshes anyway
        if finished is not None:
            self._finished(finished.cancelled)

    def _store_results(self, rows: list[tuple], pixmaps: list) -> list:
        cells = self.case.add_results(rows)
        self.cells_model.cells_added(cells, pixmaps)
        if self.current_cell_id is None:
            self.select_cell(cells[0].id)
        return cells

    def _add_problems(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            return
        if self.case is not None:
            self.unsaved.attempt(f"{len(problems)} problem(s) of the batch", partial(self.case.add_errors, problems))
        self.problems.addItems([f"{display_text(path)}: {message}" for path, message in problems])
        self._update_problem_tab()

    def _update_problem_tab(self) -> None:
        self.tabs.setTabText(2, f"Problems ({self.problems.count()})")

    def _finished(self, cancelled: bool) -> None:
        self.drain_timer.stop()
        self.task = None
        self.processed = 0
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        count = len(self.case.cells) if self.case else 0
        self.rate.setText(f"Cancelled: {count} cells kept" if cancelled else f"Done: {count} cells")
        self.refresh_differential()
        self.batch_finished.emit(cancelled)
        if self.pending_inputs and not cancelled:
            inputs, self.pending_inputs = self.pending_inputs, []
            self.classify_paths(inputs)

    def cancel(self) -> None:
        """Stop the running batch at once; what was classified so far stays in the case.

        The window answers immediately: results already queued are kept, the batch is reported finished, and
        the worker, told to stop, winds down at its next yield without reaching the case.
        """
        self.pending_inputs.clear()
        task = self.task
        if task is None:
            return
        task.cancel()
        self._drain(budget_s=None)
        if self.task is task:  # the worker had not finished on its own
            self._finished(True)

    def refresh_differential(self) -> None:
        self._last_refresh = time.monotonic()
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
