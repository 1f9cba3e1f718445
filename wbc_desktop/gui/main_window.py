"""The main window: assembles the widgets and routes user actions to the case and the background tasks."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QGuiApplication, QPixmap, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wbc_desktop.accounts.store import Accounts
from wbc_desktop.core.case import Case
from wbc_desktop.core.classes import ALL_CLASSES
from wbc_desktop.core.differential import summarize
from wbc_desktop.core.session import Session
from wbc_desktop.core.settings import LabSettings
from wbc_desktop.gui import settings_store, style
from wbc_desktop.gui.about import about_html
from wbc_desktop.gui.batch_runner import BatchRunner
from wbc_desktop.gui.lab_adapter import LabAdapter
from wbc_desktop.gui.lis_sender import LisSender
from wbc_desktop.gui.models import CellTableModel
from wbc_desktop.gui.settings_dialog import SettingsDialog
from wbc_desktop.gui.store_actions import backup_today, open_store
from wbc_desktop.gui.thumbnails import ThumbnailTask
from wbc_desktop.gui.unsaved import UnsavedChanges
from wbc_desktop.gui.widgets.case_bar import CaseBar
from wbc_desktop.gui.widgets.cell_detail import CellDetail
from wbc_desktop.gui.widgets.differential_panel import DifferentialPanel
from wbc_desktop.gui.widgets.gallery import Gallery
from wbc_desktop.gui.window_cases import CaseController
from wbc_desktop.gui.window_menus import build_menus, build_shortcuts, fill_recent
from wbc_desktop.gui.window_review import ReviewController
from wbc_desktop.gui.worker import ModelLoadTask
from wbc_desktop.paths import profiles_dir, user_data_dir


def fitting_size(width: int, height: int) -> QSize:
    """The preferred window size, shrunk to the screen's free area (a 1280x720 laptop cut the window off)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return QSize(width, height)
    free = screen.availableGeometry()
    return QSize(min(width, free.width()), min(height, free.height() - 40))  # room for the title bar


class MainWindow(QMainWindow):
    model_ready = Signal()
    model_failed = Signal(str)
    batch_finished = Signal(bool)  # cancelled
    differential_updated = Signal()

    def __init__(self, model_dir: Path | None = None, store_path: Path | None = None, load_model: bool = True):
        super().__init__()
        self.setWindowTitle("WBC Desktop")
        self.resize(fitting_size(1360, 860))
        self.setAcceptDrops(True)
        self.pool = QThreadPool.globalInstance()
        self.session = Session(settings_store.load_settings())  # settings, case, current cell: one typed place
        self.classifier = None
        self.model_error: str | None = None
        self._target_seen: tuple[tuple[int | None, int], bool] | None = None  # ((case, target), reached)
        # Every class a technician can put a cell in (the model's and beyond): gallery columns, keys, differential
        self.classes: tuple[str, ...] = ALL_CLASSES
        self.store, self.store_notice = open_store(store_path or user_data_dir() / "cases.sqlite")
        self.accounts = Accounts(self.store.db)  # signing accounts live in the same file as the cases they sign
        self.closing = False
        self.domain_scores: list[float] = []
        self.model_dir: Path | None = None
        self.undo_stack = QUndoStack(self)  # a person's changes to cells in this case (Edit › Undo, Ctrl+Z)
        self.unsaved = UnsavedChanges(self)  # writes that failed, kept until saved (a red bar with Retry)
        self.cases = CaseController(self)  # the case's life: new, resume, sign-out, amend, export, audit
        self.review = ReviewController(self)  # the current cell and what keys do to it
        self.lab = LabAdapter(self)  # other labs: the out-of-domain banner, Adapt to my lab
        self.lis = LisSender(user_data_dir() / "lis", self.pool, self)  # signed results to the LIS (HL7)
        self.batch = BatchRunner(self)  # classification batches: worker, drain, progress, cancel
        self.batch.finished.connect(self.batch_finished)
        self._build()
        if settings_store.load_problem:
            self.show_banner(settings_store.load_problem)
        if self.store_notice:
            self.integrity_banner.setText(self.store_notice)
            self.integrity_banner.setVisible(True)
        self.backup_thread = threading.Thread(target=backup_today, args=(self.store.path,), daemon=True)
        self.backup_thread.start()
        self.cases._offer_resume()
        if load_model:
            self.load_model(model_dir)

    # --- construction ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.cells_model = CellTableModel(self)
        self.cells_model.set_column_classes(self.classes)
        self.case_bar = CaseBar()
        self.case_bar.operator.setText(self.settings.operator)
        self.case_bar.details_changed.connect(self.cases._details_changed)
        self.case_bar.sign_out_requested.connect(self.cases.ask_sign_out)
        self.case_bar.collected_changed.connect(self.cases._collected_changed)

        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet(style.WARNING_BANNER)
        self.integrity_banner = QLabel("")  # red, apart from the yellow one: nothing else may replace it
        self.integrity_banner.setWordWrap(True)
        self.integrity_banner.setVisible(False)
        self.integrity_banner.setStyleSheet(style.ALARM_BANNER)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setVisible(False)
        self.resume_button.clicked.connect(self.cases._resume_offered)

        self.table = QTableView()
        self.table.setModel(self.cells_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setIconSize(QSize(56, 56))
        self.table.verticalHeader().setDefaultSectionSize(60)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 320)
        self.table.setDragEnabled(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(lambda pos: self.review._context_menu(self.table, pos))
        self.table.selectionModel().currentChanged.connect(self.review._current_changed)

        self.gallery = Gallery(self.cells_model, self.classes)
        self.gallery.reclassify_requested.connect(self.review.reclassify)
        self.gallery.one_class.toggled.connect(self.review.one_class_toggled)
        for column in self.gallery.columns.values():
            column.selectionModel().currentChanged.connect(self.review._current_changed)
            column.clicked.connect(self.review._cell_clicked)
            column.step_column.connect(self.review.step_column)
            column.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            column.customContextMenuRequested.connect(lambda pos, c=column: self.review._context_menu(c, pos))

        self.problems = QListWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Cells")
        self.tabs.addTab(self.gallery, "Gallery / review")
        self.tabs.addTab(self.problems, "Problems (0)")
        self.tabs.currentChanged.connect(lambda _index: self.review.focus_current())
        self.case_bar.sample.returnPressed.connect(self.review.focus_current)  # ID typed: back to the cells

        self.detail = CellDetail()
        self.detail.field.box_clicked.connect(self.review.select_cell)
        self.detail.field.box_drawn.connect(self.review.add_drawn_box)
        self.detail.delete_box.clicked.connect(lambda: self.review.label_current(None, advance=False))
        self.differential_panel = DifferentialPanel()
        self.differential_panel.wbc_count_changed.connect(self.cases._wbc_count_changed)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.detail)
        # The differential scrolls inside its part of the window rather than making the window taller than a
        # laptop's screen (its notes grow with IG, NRBC and uncertain flags).
        differential_scroll = QScrollArea()
        differential_scroll.setWidget(self.differential_panel)
        differential_scroll.setWidgetResizable(True)
        differential_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        differential_scroll.setMinimumHeight(160)
        right.addWidget(differential_scroll)
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
        self.statusBar().addPermanentWidget(self.lis.status)
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
        layout.addWidget(self.integrity_banner)
        layout.addWidget(self.unsaved.bar)
        layout.addLayout(banner_row)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.recent_menu = build_menus(self)
        self.shortcuts = build_shortcuts(self)
        self.refresh_differential()

    # --- images in, results shown --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.classify_paths(paths)

    def classify_paths(self, paths: list[str]) -> None:
        """Add images to the current case (a new case if none or signed); runs in the background."""
        for path in paths:
            if Path(path).is_dir():
                settings_store.remember_folder(str(Path(path).resolve()))
        fill_recent(self)
        if self.model_error is not None:
            self.show_banner(f"The model cannot be used: {self.model_error}")
            return
        self.batch.start(paths)

    def update_problem_tab(self) -> None:
        self.tabs.setTabText(2, f"Problems ({self.problems.count()})")

    def cancel(self) -> None:
        """Stop the running batch at once; what was classified so far stays in the case (BatchRunner.cancel)."""
        self.batch.cancel()

    def refresh_differential(self) -> None:
        if self.case is None:
            differential = summarize([], reference_ranges=self.settings.reference_ranges)
            review, needs = {}, 0
        else:
            differential = self.case.differential(
                self.classes, self.settings.reference_ranges, self.settings.lab_categories
            )
            review = self.case.review_counts()
            needs = sum(cell.needs_review(self.review_threshold) for cell in self.case.cells)
        reached = self.differential_panel.show_differential(differential, review, needs)
        self._cue_target(differential, reached)
        self.gallery.refresh_headers()
        self.differential_updated.emit()

    def _cue_target(self, differential, reached: bool) -> None:
        """The moment a case reaches its target count with every call verified by a person (``reached``, as the
        panel's bar shows it): a message, and a sound if the lab wants one. Only on the crossing: not for a case
        opened complete, not on every key."""
        key = (self.case.id if self.case is not None else None, differential.target)
        if self._target_seen == (key, False) and reached:
            self.statusBar().showMessage(f"Target reached: {differential.total} white cells counted", 6000)
            if self.settings.target_sound:
                QApplication.beep()
        self._target_seen = (key, reached)

    def load_thumbnails_later(self) -> None:
        """Resumed cases have no thumbnails in memory: make them in the background."""
        if self.case is None or not self.case.cells:
            return
        task = ThumbnailTask([(cell.id, cell.path) for cell in self.case.cells])
        task.signals.yielded.connect(lambda item: self.cells_model.set_thumbnail(item[0], QPixmap.fromImage(item[1])))
        self._thumbnail_task = task
        self.pool.start(task)

    # --- model ---------------------------------------------------------------------------------------------
    def load_model(self, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir
        profile = profiles_dir() / self.settings.profile if self.settings.profile else None
        self.model_status.setText("Loading model…")
        task = ModelLoadTask(model_dir, profile)
        task.signals.returned.connect(self.use_classifier)
        task.signals.errored.connect(self._model_failed)
        task.signals.warned.connect(self._profile_refused)
        self._model_task = task
        self.pool.start(task)

    def use_classifier(self, classifier) -> None:
        """Make ``classifier`` the one that classifies (the model loader calls this when the model is ready)."""
        self.classifier = classifier
        self.session.model_threshold = classifier.review_threshold
        self.model_error = None
        self.cells_model.set_threshold(self.review_threshold)
        self.gallery.invalidate()
        self.model_status.setText(f"Model {classifier.name} {classifier.version} ready")
        self.model_ready.emit()
        self.batch.start_pending()

    def _profile_refused(self, message: str) -> None:
        self.show_banner(
            f"Lab profile '{self.settings.profile}' is not used: {message}. The bundled model makes the calls; "
            "Settings › Adapt to my lab fits a new profile from your verified cells."
        )

    def _model_failed(self, message: str) -> None:
        self.model_error = message
        self.model_status.setText("Model not available")
        self.show_banner(f"The model cannot be used: {message}")
        self.model_failed.emit(message)

    # The session's fields, read and set through the window as the parts and tests always have.
    @property
    def settings(self) -> LabSettings:
        return self.session.settings

    @settings.setter
    def settings(self, settings: LabSettings) -> None:
        self.session.settings = settings

    @property
    def case(self) -> Case | None:
        return self.session.case

    @case.setter
    def case(self, case: Case | None) -> None:
        self.session.case = case

    @property
    def current_cell_id(self) -> int | None:
        return self.session.current_cell_id

    @current_cell_id.setter
    def current_cell_id(self, cell_id: int | None) -> None:
        self.session.current_cell_id = cell_id

    @property
    def review_threshold(self) -> float:
        return self.session.review_threshold

    def model_info(self) -> dict:
        return self.classifier.identity if self.classifier is not None else {}

    # --- dialogs -------------------------------------------------------------------------------------------
    def open_settings(self) -> None:
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
        if profile_changed and not self.batch.running:
            self.classifier = None
            self.load_model(self.model_dir)
        if profile_changed:
            self.lab.show_lab_model()

    def show_about(self) -> None:
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
        self.lab.cancel()
        self.batch.wait(5.0)
        self.pool.waitForDone(5000)
        if self.cases.case_lock is not None:
            self.cases.case_lock.unlock()
        self.store.close()
        super().closeEvent(event)
