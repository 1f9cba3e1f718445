"""The main window: assembles the widgets and routes user actions to the case and the background tasks."""

from __future__ import annotations

import getpass
import html
import queue
import time
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.core.case import Case, CaseLockedError, CaseStore, case_report
from wbc_desktop.core.differential import CLASSES
from wbc_desktop.core.domain import OUT_OF_DOMAIN_MESSAGE, batch_score
from wbc_desktop.core.export import ExportError, write_csv, write_json
from wbc_desktop.core.images import ImageLoadError, display_text, load_image, load_preview
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.models import CELL_ID_ROLE, STATUS_TEXT, CellTableModel
from wbc_desktop.gui.report import write_pdf
from wbc_desktop.gui.widgets.case_bar import CaseBar
from wbc_desktop.gui.widgets.cell_detail import CellDetail
from wbc_desktop.gui.widgets.differential_panel import DifferentialPanel
from wbc_desktop.gui.widgets.field_view import FieldBox
from wbc_desktop.gui.widgets.gallery import Gallery
from wbc_desktop.gui.worker import ClassifyTask, Finished, ModelLoadTask
from wbc_desktop.paths import user_data_dir

# Results are moved into the case on a timer, at most this long per tick, so the window never stutters.
DRAIN_INTERVAL_MS = 40
DRAIN_BUDGET_S = 0.020
DRAIN_MAX_ITEMS = 32  # bounds the SQLite insert and the model update done per tick
REFRESH_INTERVAL_S = 0.25
MIN_CELLS_FOR_DOMAIN_WARNING = 5


def domain_batch_size() -> int:
    from wbc_desktop.core.domain import BATCH_SIZE

    return BATCH_SIZE


FIELD_PREVIEW_SIDE = 960


def pixmap_from_array(array) -> QPixmap:
    height, width, _ = array.shape
    return QPixmap.fromImage(QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy())


class MainWindow(QMainWindow):
    model_ready = Signal()
    model_failed = Signal(str)
    batch_finished = Signal(bool)  # cancelled
    differential_updated = Signal()

    def __init__(self, model_dir: Path | None = None, store_path: Path | None = None, load_model: bool = True):
        super().__init__()
        self.setWindowTitle("WBC Desktop")
        self.resize(1360, 860)
        self.setAcceptDrops(True)
        self.pool = QThreadPool.globalInstance()
        self.settings = settings_store.load_settings()
        self.classifier = None
        self.model_error: str | None = None
        self.classes: tuple[str, ...] = CLASSES
        self.store = CaseStore(store_path or user_data_dir() / "cases.sqlite")
        self.case: Case | None = None
        self.task: ClassifyTask | None = None
        self.pending_inputs: list[str] = []
        self.current_cell_id: int | None = None
        self.closing = False
        self.processed = 0
        self.domain_scores: list[float] = []
        self.model_dir: Path | None = None
        self._last_refresh = 0.0
        self.drain_timer = QTimer(self)
        self.drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self.drain_timer.timeout.connect(self._drain)
        self._build()
        self._offer_resume()
        if load_model:
            self.load_model(model_dir)

    # --- construction ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.cells_model = CellTableModel(self)
        self.case_bar = CaseBar()
        self.case_bar.operator.setText(self.settings.operator)
        self.case_bar.details_changed.connect(self._details_changed)
        self.case_bar.sign_out_requested.connect(self.ask_sign_out)

        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet("background:#fef3c7; color:#78350f; padding:6px; border:1px solid #f59e0b;")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setVisible(False)
        self.resume_button.clicked.connect(self._resume_offered)

        self.table = QTableView()
        self.table.setModel(self.cells_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setIconSize(QSize(56, 56))
        self.table.verticalHeader().setDefaultSectionSize(60)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 320)
        self.table.setDragEnabled(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(lambda pos: self._context_menu(self.table, pos))
        self.table.selectionModel().currentChanged.connect(self._current_changed)

        self.gallery = Gallery(self.cells_model, self.classes)
        self.gallery.reclassify_requested.connect(self.reclassify)
        for column in self.gallery.columns.values():
            column.selectionModel().currentChanged.connect(self._current_changed)
            column.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            column.customContextMenuRequested.connect(lambda pos, c=column: self._context_menu(c, pos))

        self.problems = QListWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Cells")
        self.tabs.addTab(self.gallery, "Gallery / review")
        self.tabs.addTab(self.problems, "Problems (0)")

        self.detail = CellDetail()
        self.detail.field.box_clicked.connect(self.select_cell)
        self.detail.field.box_drawn.connect(self.add_drawn_box)
        self.detail.delete_box.clicked.connect(lambda: self.label_current(None, advance=False))
        self.differential_panel = DifferentialPanel()
        self.differential_panel.wbc_count_changed.connect(self._wbc_count_changed)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.detail)
        right.addWidget(self.differential_panel)
        right.setSizes([430, 380])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tabs)
        splitter.addWidget(right)
        splitter.setSizes([880, 480])

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.rate = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.model_status = QLabel("Loading model…")
        self.statusBar().addWidget(self.model_status)
        self.statusBar().addPermanentWidget(self.rate)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.resume_button)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.case_bar)
        layout.addLayout(banner_row)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self._build_shortcuts()
        self.refresh_differential()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &images…", self.open_images_dialog, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("&Recent folders")
        self._fill_recent()
        file_menu.addSeparator()
        self._action(file_menu, "&New case", self.new_case, QKeySequence.StandardKey.New)
        self._action(file_menu, "Open &case…", self.choose_case_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Export &CSV…", lambda: self.export_dialog("csv"))
        self._action(file_menu, "Export &JSON…", lambda: self.export_dialog("json"))
        self._action(file_menu, "Export &PDF report…", lambda: self.export_dialog("pdf"), "Ctrl+P")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        case_menu = self.menuBar().addMenu("&Case")
        self._action(case_menu, "&Sign out…", self.ask_sign_out)
        self._action(case_menu, "&Audit trail…", self.show_audit)
        settings_menu = self.menuBar().addMenu("&Settings")
        self._action(settings_menu, "&Preferences…", self.open_settings)
        self._action(settings_menu, "&Adapt to my lab…", self.adapt_to_lab)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About WBC Desktop", self.show_about)

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_shortcuts(self) -> None:
        """Keyboard review: 1-5 classes (key map), 0 or X exclude, Enter/Space confirm.

        Bound to the cell views only, so typing a sample ID or a WBC count never reclassifies a cell.
        """
        self.shortcuts: list[QShortcut] = []
        bindings = [(key, lambda k=key: self._key_label(k)) for key in ("1", "2", "3", "4", "5")]
        bindings += [(key, lambda: self.label_current(None)) for key in ("0", "X")]
        bindings += [(key, self.confirm_current) for key in ("Return", "Enter", "Space")]
        for key, slot in bindings:
            shortcut = QShortcut(QKeySequence(key), self.tabs)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    # --- model ---------------------------------------------------------------------------------------------
    def load_model(self, model_dir: Path | None = None) -> None:
        from wbc_desktop.gui.settings_dialog import profiles_dir

        self.model_dir = model_dir
        profile = profiles_dir() / self.settings.profile if self.settings.profile else None
        self.model_status.setText("Loading model…")
        task = ModelLoadTask(model_dir, profile)
        task.signals.loaded.connect(self._model_loaded)
        task.signals.failed.connect(self._model_failed)
        self._model_task = task
        self.pool.start(task)

    def _model_loaded(self, classifier) -> None:
        self.classifier = classifier
        self.model_error = None
        self.cells_model.set_threshold(self.review_threshold)
        self.gallery.invalidate()
        self.model_status.setText(f"Model {classifier.name} {classifier.version} ready")
        self.model_ready.emit()
        if self.pending_inputs:
            inputs, self.pending_inputs = self.pending_inputs, []
            self.classify_paths(inputs)

    def _model_failed(self, message: str) -> None:
        self.model_error = message
        self.model_status.setText("Model not available")
        self.show_banner(f"The model cannot be used: {message}")
        self.model_failed.emit(message)

    @property
    def review_threshold(self) -> float:
        model_threshold = self.classifier.review_threshold if self.classifier is not None else 0.9
        return self.settings.effective_threshold(model_threshold)

    def model_info(self) -> dict:
        c = self.classifier
        return {"name": c.name, "version": c.version, "sha256": c.sha256} if c is not None else {}

    # --- cases ---------------------------------------------------------------------------------------------
    @property
    def who(self) -> str:
        return (self.case.info.operator if self.case else "") or self.settings.operator or getpass.getuser()

    def new_case(self) -> Case:
        self.cancel()
        case = self.store.create_case(
            operator=self.case_bar.operator.text().strip() or self.settings.operator,
            model=self.model_info(),
            target=self.settings.target_count,
        )
        self.set_case(case)
        return case

    def set_case(self, case: Case | None) -> None:
        self.case = case
        self.domain_scores = []
        self.current_cell_id = None
        self.cells_model.set_case(case)
        self.gallery.invalidate()
        self.case_bar.show_case(case.info if case else None)
        self.differential_panel.set_wbc_count(case.info.wbc_count if case else None)
        self.problems.clear()
        for path, message in case.errors if case else []:
            self.problems.addItem(f"{display_text(path)}: {message}")
        self._update_problem_tab()
        self.detail.clear()
        self.refresh_differential()
        self._load_thumbnails_later()

    def resume_case(self, case_id: int) -> Case:
        case = self.store.open_case(case_id)
        self.set_case(case)
        self.banner.setVisible(False)
        self.resume_button.setVisible(False)
        return case

    def _offer_resume(self) -> None:
        unfinished = [info for info in self.store.case_infos(unfinished_only=True) if info.cell_count]
        if unfinished:
            latest = unfinished[0]
            self._resume_candidate = latest.id
            self.show_banner(
                f"{len(unfinished)} unfinished case(s). Latest: “{latest.sample_id or 'no ID'}”, "
                f"{latest.cell_count} cells, started {latest.created[:16].replace('T', ' ')}.",
                resume=True,
            )

    def _resume_offered(self) -> None:
        self.resume_case(self._resume_candidate)

    def choose_case_dialog(self) -> None:
        infos = self.store.case_infos()
        if not infos:
            QMessageBox.information(self, "Open case", "There are no saved cases yet.")
            return
        names = [
            f"#{i.id} {i.sample_id or '(no ID)'} · {i.cell_count} cells · {i.created[:16].replace('T', ' ')}"
            + (" · signed" if i.signed else "")
            for i in infos
        ]
        choice, ok = QInputDialog.getItem(self, "Open case", "Case:", names, 0, False)
        if ok:
            self.resume_case(infos[names.index(choice)].id)

    def _details_changed(self, sample_id: str, operator: str) -> None:
        if self.closing:
            return
        info = self.case.info if self.case is not None else None
        if info is not None and not self.case.locked and (info.sample_id, info.operator) != (sample_id, operator):
            self.case.update_details(sample_id=sample_id, operator=operator)
        if operator and operator != self.settings.operator:
            self.settings.operator = operator
            settings_store.save_settings(self.settings)

    def _wbc_count_changed(self, value: float | None) -> None:
        if self.case is not None and not self.case.locked:
            self.case.update_details(wbc_count=value)
            self.refresh_differential()

    def ask_sign_out(self) -> None:
        if self.case is None or self.case.locked:
            return
        name, ok = QInputDialog.getText(self, "Sign out", "Name of the person signing out:", text=self.who)
        if ok and name.strip():
            self.sign_out(name.strip())

    def sign_out(self, name: str) -> None:
        assert self.case is not None
        self.case.sign_out(name)
        self.case_bar.show_case(self.case.info)

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
        if self.case is None or self.case.locked:
            self.new_case()
        elif not self.case.info.model:
            self.case.set_model(self.model_info())
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
            cells = self.case.add_results(
                (str(r.path), r.label, r.probabilities, str(r.source) if r.source else None, r.box) for r, _ in good
            )
            pixmaps = [QPixmap.fromImage(thumb) if thumb is not None else None for _, thumb in good]
            self.cells_model.cells_added(cells, pixmaps)
            if self.current_cell_id is None:
                self.select_cell(cells[0].id)
        self._add_problems([(str(r.path), r.error or "unknown error") for r, _ in results if not r.ok])
        self.processed += sum(r.first_of_image for r, _ in results)
        self.domain_scores.extend(r.domain_score for r, _ in good if r.domain_score is not None)
        self._check_domain()
        rate = self.processed / max(time.monotonic() - task.started, 1e-6)
        self.progress.setValue(self.processed)
        self.rate.setText(f"{self.processed}/{task.total} · {rate:.0f} images/s")
        if results and time.monotonic() - self._last_refresh > REFRESH_INTERVAL_S:
            self.refresh_differential()  # live, but not on every tick: the end of the batch refreshes anyway
        if finished is not None:
            self._finished(finished.cancelled)

    def _check_domain(self) -> None:
        """Show the other-lab banner once enough cells of this case look unlike the training data."""
        base = getattr(self.classifier, "base", self.classifier)
        domain = getattr(base, "domain", None)
        if domain is None or len(self.domain_scores) < MIN_CELLS_FOR_DOMAIN_WARNING:
            return
        if batch_score(self.domain_scores[-domain_batch_size() :]) > domain.batch_threshold:
            if getattr(self.classifier, "profile", None) is None:
                self.show_banner(
                    f"⚠ {OUT_OF_DOMAIN_MESSAGE[0].upper()}{OUT_OF_DOMAIN_MESSAGE[1:]} (Settings › Adapt to my lab)."
                )
            self.domain_warning = True

    def _add_problems(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            return
        if self.case is not None:
            self.case.add_errors(problems)
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

    # --- review --------------------------------------------------------------------------------------------
    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        cell_id = current.data(CELL_ID_ROLE) if current.isValid() else None
        if cell_id is not None:
            self.current_cell_id = cell_id
            self._show_detail(cell_id)

    def select_cell(self, cell_id: int) -> None:
        row = self.cells_model.row_of(cell_id)
        if row is None:
            return
        self.current_cell_id = cell_id
        self.table.selectionModel().setCurrentIndex(
            self.cells_model.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
        )
        self._show_detail(cell_id)

    def _show_detail(self, cell_id: int) -> None:
        if self.case is None:
            return
        cell = self.case.cell(cell_id)
        status = (
            "needs review" if cell.needs_review(self.review_threshold) else STATUS_TEXT.get(cell.status, cell.status)
        )
        name = display_text(
            Path(cell.source).name + " · " + cell.path.rsplit("#", 1)[-1] if cell.source else Path(cell.path).name
        )
        caption = (
            f"<b>{html.escape(name)}</b><br>{(cell.label or 'excluded').capitalize()} · "
            f"model: {cell.predicted} ({cell.confidence:.1%}) · {status}"
        )
        if cell.source:
            self._show_field(cell, caption)
            return
        try:
            pixmap = pixmap_from_array(load_preview(cell.path))
        except ImageLoadError:
            pixmap = self.cells_model.thumbnail(cell_id)
        self.detail.show_cell(pixmap, caption, cell.probabilities, cell.label)

    def _show_field(self, cell, caption: str) -> None:
        """The field the cell was found in, with every box of that field labelled."""
        try:
            with Image.open(cell.source) as image:
                field_width = ImageOps.exif_transpose(image).size[0]
            preview = load_preview(cell.source, FIELD_PREVIEW_SIDE)
        except (ImageLoadError, OSError):
            self.detail.show_cell(self.cells_model.thumbnail(cell.id), caption, cell.probabilities, cell.label)
            return
        boxes = [
            FieldBox(
                other.id,
                tuple(other.box),
                f"{(other.label or 'excluded')} {other.confidence:.0%}",
                other.label,
                selected=other.id == cell.id,
            )
            for other in self.case.cells
            if other.source == cell.source and other.box
        ]
        scale = preview.shape[1] / field_width
        self.detail.show_field(pixmap_from_array(preview), scale, boxes, caption, cell.probabilities, cell.label)

    def add_drawn_box(self, box: list[int]) -> None:
        """A WBC the finder missed: crop it from the field, classify it, add it to the case."""
        if self.case is None or self.current_cell_id is None or self.classifier is None or self.case.locked:
            return
        source = self.case.cell(self.current_cell_id).source
        if not source:
            return
        from wbc_desktop.core.fields import Detection, crop_cell

        field_rgb = load_image(source)
        probabilities = self.classifier.predict([crop_cell(field_rgb, Detection(tuple(box), 1.0, 0.0))])[0]
        probs = {c: float(p) for c, p in zip(self.classifier.classes, probabilities, strict=True)}
        label = max(probs, key=probs.get)
        cell = self.case.add_drawn_cell(source, box, label, probs, self.who)
        self.cells_model.cells_added([cell], [None])
        self.detail.draw_box.setChecked(False)
        self.select_cell(cell.id)
        self.refresh_differential()

    def _key_label(self, key: str) -> None:
        label = self.settings.key_map.get(key)
        if label in self.classes:
            self.label_current(label)

    def label_current(self, label: str | None, advance: bool = True) -> None:
        if self.current_cell_id is not None:
            self.reclassify([self.current_cell_id], label, advance=advance)

    def confirm_current(self) -> None:
        if self.current_cell_id is None or self.case is None:
            return
        cell = self.case.cell(self.current_cell_id)
        self.reclassify([cell.id], cell.label, advance=True)

    def reclassify(self, cell_ids: list[int], label: str | None, advance: bool = False) -> None:
        """Set the label of cells (``None`` excludes); saved at once, with an audit entry each."""
        if self.case is None:
            return
        try:
            for cell_id in cell_ids:
                self.case.set_label(cell_id, label, self.who)
                self.cells_model.cell_changed(cell_id)
        except CaseLockedError as error:
            self.show_banner(str(error))
            return
        if advance and len(cell_ids) == 1:
            self._advance_from(cell_ids[0])
        elif self.current_cell_id in cell_ids:
            self._show_detail(self.current_cell_id)
        self.refresh_differential()

    def _advance_from(self, cell_id: int) -> None:
        row = self.cells_model.row_of(cell_id)
        if row is not None and row + 1 < self.cells_model.rowCount():
            next_cell = self.cells_model.cell_at(row + 1)
            self.select_cell(next_cell.id)
        else:
            self._show_detail(cell_id)

    def _context_menu(self, view, position) -> None:
        index = view.indexAt(position)
        if not index.isValid():
            return
        ids = sorted(
            {i.data(CELL_ID_ROLE) for i in view.selectionModel().selectedIndexes()} | {index.data(CELL_ID_ROLE)}
        )
        menu = QMenu(self)
        for key, label in sorted(self.settings.key_map.items()):
            menu.addAction(f"{label.capitalize()}\t{key}", lambda lab=label: self.reclassify(ids, lab))
        menu.addSeparator()
        menu.addAction("Exclude (artifact, not a WBC)\tX", lambda: self.reclassify(ids, None))
        menu.exec(view.viewport().mapToGlobal(position))

    # --- exports -------------------------------------------------------------------------------------------
    def export(self, kind: str, path: str | Path, overwrite: bool = False) -> None:
        """Write the case as ``csv``, ``json`` or ``pdf``; refuses to replace a file unless ``overwrite``."""
        if self.case is None:
            raise ExportError("there is no case to export")
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or confirm replacing it")
        cells, differential, report = case_report(self.case, self.classes, self.settings.reference_ranges)
        if kind == "csv":
            write_csv(path, cells, self.classes, differential)
        elif kind == "json":
            write_json(path, report)
        elif kind == "pdf":
            write_pdf(path, self.case, differential)
        else:
            raise ValueError(kind)

    def export_dialog(self, kind: str) -> None:
        if self.case is None:
            QMessageBox.information(self, "Export", "Open or create a case first.")
            return
        name = f"{self.case.info.sample_id or f'case-{self.case.id}'}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()}", name, f"{kind.upper()} (*.{kind})")
        if not path:
            return
        try:
            self.export(kind, path, overwrite=True)  # the save dialog already asked before replacing
        except (ExportError, OSError) as error:
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Exported {path}", 5000)

    # --- dialogs -------------------------------------------------------------------------------------------
    def open_settings(self) -> None:
        from wbc_desktop.gui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.classifier, self)
        if dialog.exec():
            self.apply_settings(dialog.result_settings())

    def apply_settings(self, settings) -> None:
        profile_changed = settings.profile != self.settings.profile
        self.settings = settings
        settings_store.save_settings(settings)
        self.cells_model.set_threshold(self.review_threshold)
        self.gallery.invalidate()
        if self.case is not None and not self.case.locked:
            self.case.update_details(target=settings.target_count)
        self.refresh_differential()
        if profile_changed and self.task is None:
            self.classifier = None
            self.load_model(self.model_dir)

    def verified_cells(self) -> tuple[list[Path], list[str]]:
        """Single-cell images a person confirmed or reclassified, in every case of the store."""
        paths, labels = [], []
        for info in self.store.case_infos():
            for cell in self.store.open_case(info.id).cells:
                if cell.status in ("reviewed", "reclassified") and cell.label and not cell.source:
                    paths.append(Path(cell.path))
                    labels.append(cell.label)
        return paths, labels

    def adapt_to_lab(self) -> None:
        """Fit a lab profile on the verified cells (background), then use it."""
        import datetime as dt

        from wbc_desktop.gui.settings_dialog import profiles_dir
        from wbc_desktop.gui.worker import AdaptTask

        base = getattr(self.classifier, "base", self.classifier)
        if base is None:
            return
        paths, labels = self.verified_cells()
        if len(paths) < 20:
            QMessageBox.information(
                self,
                "Adapt to my lab",
                f"{len(paths)} verified cells so far. Review at least 20 cells of your lab (confirm with Enter or "
                "reclassify with 1–5), ideally 50 or more covering every class, then try again.",
            )
            return
        name = f"lab-{dt.datetime.now():%Y%m%d-%H%M}"
        task = AdaptTask(base, paths, labels, name, profiles_dir() / name)
        task.signals.done.connect(self._adapted)
        task.signals.failed.connect(lambda message: QMessageBox.warning(self, "Adapt to my lab", message))
        self._adapt_task = task
        self.statusBar().showMessage(f"Adapting to your lab on {len(paths)} verified cells…")
        self.pool.start(task)

    def _adapted(self, profile) -> None:
        validation = profile.validation
        accuracy = f"{validation['accuracy']:.1%}" if "accuracy" in validation else "not measured (too few cells)"
        QMessageBox.information(
            self,
            "Adapt to my lab",
            f"Lab profile “{profile.name}” fitted on {profile.cells} verified cells. Accuracy on the "
            f"{validation.get('cells_held_back', 0)} cells held back: {accuracy}. It is now in use; choose "
            "another in Settings › Preferences.",
        )
        settings = self.settings.__class__.from_dict(self.settings.to_dict())
        settings.profile = profile.name
        self.apply_settings(settings)

    def show_audit(self) -> None:
        if self.case is None:
            return
        lines = [
            f"{e.at}  {e.who}  {e.action}  cell {e.cell_id or '-'}: {e.from_label or '—'} → {e.to_label or '—'}"
            for e in self.case.audit()
        ]
        QMessageBox.information(self, "Audit trail", "\n".join(lines) or "No changes yet.")

    def show_about(self) -> None:
        from wbc_desktop.gui.about import about_html

        QMessageBox.about(self, "About WBC Desktop", about_html(self.classifier))

    def show_banner(self, text: str, resume: bool = False) -> None:
        self.banner.setText(text)
        self.banner.setVisible(True)
        self.resume_button.setVisible(resume)

    # --- shutdown ------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        if not self.closing:
            self.case_bar.commit_edits()  # a sample ID typed but not yet confirmed is kept too
        self.closing = True
        self.cancel()
        if self.task is not None:
            self.task.done.wait(5.0)
        self.pool.waitForDone(5000)
        self.store.close()
        super().closeEvent(event)
