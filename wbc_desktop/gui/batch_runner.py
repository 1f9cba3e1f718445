"""The window's part that runs a classification batch: the worker task, the time-budgeted drain of its results
into the case (the GUI never stutters), progress and rate, Cancel, and inputs that wait for the model or for the
running batch. It owns that state and says when a batch ends (``finished``)."""

from __future__ import annotations

import queue
import time
from functools import partial

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QPixmap

from wbc_desktop.core.images import display_text
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.gui.worker import ClassifyTask, Finished
from wbc_desktop.inference.litert import classified_by_robust

# Results are moved into the case on a timer, at most this long per tick, so the window never stutters.
DRAIN_INTERVAL_MS = 40
DRAIN_BUDGET_S = 0.020
DRAIN_MAX_ITEMS = 32  # bounds the SQLite insert and the model update done per tick
REFRESH_INTERVAL_S = 0.25


class BatchRunner(QObject):
    finished = Signal(bool)  # cancelled

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.task: ClassifyTask | None = None
        self.pending_inputs: list[str] = []  # dropped before the model was ready or during a batch
        self.processed = 0
        self.last_refresh = 0.0
        self.drain_timer = QTimer(self)
        self.drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self.drain_timer.timeout.connect(self.drain)

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, paths: list[str]) -> None:
        """Classify ``paths`` into the window's case in the background (queued if the model is not ready yet or
        a batch is running)."""
        w = self.window
        if w.classifier is None or self.task is not None:
            self.pending_inputs.extend(paths)  # runs when the model is ready / the batch is done
            return
        if (w.case is None or w.case.locked) and w.cases.new_case() is None:
            return  # the banner says why no case could be made; nothing was started
        if not w.case.info.model:
            w.unsaved.attempt("the model's name in the case", partial(w.case.set_model, w.model_info()))
        self.task = ClassifyTask(list(paths), w.classifier, mode=w.settings.mode, um_per_px=w.settings.um_per_px)
        self.task.signals.started.connect(self.discovered)
        w.progress.setRange(0, 0)
        w.progress.setVisible(True)
        w.cancel_button.setVisible(True)
        w.rate.setText("finding images…")
        w.pool.start(self.task)
        self.drain_timer.start()

    def start_pending(self) -> None:
        """The model is ready: run what was dropped while it loaded."""
        if self.pending_inputs and self.task is None:
            inputs, self.pending_inputs = self.pending_inputs, []
            self.start(inputs)

    def discovered(self, found: tuple[int, list]) -> None:
        total, errors = found
        self.window.progress.setRange(0, max(total, 1))
        self.window.progress.setValue(0)
        self.add_problems(errors)

    def drain(self, budget_s: float | None = DRAIN_BUDGET_S) -> None:
        """Move finished results from the worker's queue into the case, within a time budget per tick
        (``budget_s=None``: everything queued, as on Cancel)."""
        w, task = self.window, self.task
        if task is None or w.case is None:
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
                    classified_by_robust(w.classifier, r.domain_score),  # such calls wait for review
                )
                for r, _ in good
            ]
            pixmaps = [QPixmap.fromImage(thumb) if thumb is not None else None for _, thumb in good]
            # kept and retried if the database cannot take them now (gui/unsaved.py): results are never dropped
            try:
                w.unsaved.attempt(f"{len(rows)} classified cell(s)", partial(self.store_results, rows, pixmaps))
            except CaseLockedError as error:  # signed in another window meanwhile: this batch cannot add to it
                w.show_banner(f"{error}. The rest of this batch was not added; drop the images again for a new case.")
                self.task.cancel()
                self.end(True)
                return
        self.add_problems([(str(r.path), r.error or "unknown error") for r, _ in results if not r.ok])
        self.processed += sum(r.first_of_image for r, _ in results)
        w.domain_scores.extend(r.domain_score for r, _ in good if r.domain_score is not None)
        w.lab.check_domain()
        rate = self.processed / max(time.monotonic() - task.started, 1e-6)
        w.progress.setValue(self.processed)
        w.rate.setText(f"{self.processed}/{task.total} · {rate:.0f} images/s")
        if results and time.monotonic() - self.last_refresh > REFRESH_INTERVAL_S:
            self.last_refresh = time.monotonic()
            w.refresh_differential()  # live, but not on every tick: the end of the batch refreshes anyway
        if finished is not None:
            self.end(finished.cancelled)

    def store_results(self, rows: list[tuple], pixmaps: list) -> list:
        w = self.window
        cells = w.case.add_results(rows)
        w.cells_model.cells_added(cells, pixmaps)
        if w.current_cell_id is None:
            w.review.select_cell(cells[0].id)
        return cells

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            return
        w = self.window
        if w.case is not None:
            w.unsaved.attempt(f"{len(problems)} problem(s) of the batch", partial(w.case.add_errors, problems))
        w.problems.addItems([f"{display_text(path)}: {message}" for path, message in problems])
        w.update_problem_tab()

    def end(self, cancelled: bool) -> None:
        w = self.window
        self.drain_timer.stop()
        self.task = None
        self.processed = 0
        w.progress.setVisible(False)
        w.cancel_button.setVisible(False)
        count = len(w.case.cells) if w.case else 0
        w.rate.setText(f"Cancelled: {count} cells kept" if cancelled else f"Done: {count} cells")
        w.refresh_differential()
        self.finished.emit(cancelled)
        if self.pending_inputs and not cancelled:
            inputs, self.pending_inputs = self.pending_inputs, []
            self.start(inputs)

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
        self.drain(budget_s=None)
        if self.task is task:  # the worker had not finished on its own
            self.end(True)

    def wait(self, seconds: float) -> None:
        """On closing: give the worker a moment to stop."""
        if self.task is not None:
            self.task.done.wait(seconds)
