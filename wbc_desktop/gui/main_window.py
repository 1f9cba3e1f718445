"""The main window: assembles the widgets and routes user actions to the case and the background tasks."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
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
from wbc_desktop.core.classes import ALL_CLASSES, DEFAULT_KEY_MAP
from wbc_desktop.gui import settings_store, style
from wbc_desktop.gui.batch_runner import BatchRunner
from wbc_desktop.gui.lis_sender import LisSender
from wbc_desktop.gui.models import CellTableModel
from wbc_desktop.gui.store_actions import backup_today, open_store, restore_backup_dialog
from wbc_desktop.gui.unsaved import UnsavedChanges
from wbc_desktop.gui.widgets.case_bar import CaseBar
from wbc_desktop.gui.widgets.cell_detail import CellDetail
from wbc_desktop.gui.widgets.differential_panel import DifferentialPanel
from wbc_desktop.gui.widgets.gallery import Gallery
from wbc_desktop.gui.window_batch import BatchActions
from wbc_desktop.gui.window_cases import CaseController
from wbc_desktop.gui.window_lab import LabAdapter
from wbc_desktop.gui.window_review import ReviewController
from wbc_desktop.gui.worker import ModelLoadTask
from wbc_desktop.paths import user_data_dir


def fitting_size(width: int, height: int) -> QSize:
    """The preferred window size, shrunk to the screen's free area (a 1280x720 laptop cut the window off)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return QSize(width, height)
    free = screen.availableGeometry()
    return QSize(min(width, free.width()), min(height, free.height() - 40))  # room for the title bar


class MainWindow(BatchActions, QMainWindow):
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
        self.settings = settings_store.load_settings()
        self.classifier = None
        self.model_error: str | None = None
        # Every class a technician can put a cell in (the model's and beyond): gallery columns, keys, differential
        self.classes: tuple[str, ...] = ALL_CLASSES
        self.store, self.store_notice = open_store(store_path or user_data_dir() / "cases.sqlite")
        self.accounts = Accounts(self.store.db)  # signing accounts live in the same file as the cases they sign
        self.case: Case | None = None
        self.current_cell_id: int | None = None  # the one cell keys act on, highlighted wherever it is shown
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
        self.cells_model.column_classes = self.classes
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
            column.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            column.customContextMenuRequested.connect(lambda pos, c=column: self.review._context_menu(c, pos))

        self.problems = QListWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Cells")
        self.tabs.addTab(self.gallery, "Gallery / review")
        self.tabs.addTab(self.problems, "Problems (0)")

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
        self._action(file_menu, "&New case", self.cases.new_case, QKeySequence.StandardKey.New)
        self._action(file_menu, "Open &case…", self.cases.choose_case_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Export &CSV…", lambda: self.cases.export_dialog("csv"))
        self._action(file_menu, "Export &JSON…", lambda: self.cases.export_dialog("json"))
        self._action(file_menu, "Export &PDF report…", lambda: self.cases.export_dialog("pdf"), "Ctrl+P")
        self._action(file_menu, "Send to &LIS (HL7)", self.cases.send_to_lis)
        self._action(file_menu, "&Retry sending to LIS", lambda: self.lis.deliver(self.settings))
        file_menu.addSeparator()
        self._action(file_menu, "Restore &backup…", lambda: restore_backup_dialog(self))
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        edit_menu.addActions([undo, redo])
        edit_menu.addSeparator()
        self.confirm_page_action = self._action(
            edit_menu, "Confirm the cells shown in this &column", self.review.confirm_page, "Ctrl+Return"
        )
        self._action(edit_menu, "&Next column", lambda: self.review.next_column(1), "Ctrl+PgDown")
        self._action(edit_menu, "&Previous column", lambda: self.review.next_column(-1), "Ctrl+PgUp")
        self.undo_action, self.redo_action = undo, redo
        case_menu = self.menuBar().addMenu("&Case")
        self._action(case_menu, "&Sign out…", self.cases.ask_sign_out)
        self._action(case_menu, "&Amend signed report…", self.cases.amend_dialog)
        self._action(case_menu, "New signing &account…", self.cases.add_account_dialog)
        self._action(case_menu, "&Audit trail…", self.cases.show_audit)
        settings_menu = self.menuBar().addMenu("&Settings")
        self._action(settings_menu, "&Preferences…", self.open_settings)
        self._action(settings_menu, "&Adapt to my lab…", self.lab.adapt_to_lab)
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
        """Keyboard review: 1-8 classes (key map), 0 or X exclude, Enter/Space confirm.

        Bound to the cell views only, so typing a sample ID or a WBC count never reclassifies a cell.
        """
        self.shortcuts: list[QShortcut] = []
        bindings = [(key, lambda k=key: self.review._key_label(k)) for key in DEFAULT_KEY_MAP]
        bindings += [(key, lambda: self.review.label_current(None)) for key in ("0", "X")]
        bindings += [(key, self.review.confirm_current) for key in ("Return", "Enter", "Space")]
        bindings += [("Z", self.review.zoom_current)]
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
        task.signals.profile_refused.connect(self._profile_refused)
        self._model_task = task
        self.pool.start(task)

    def _model_loaded(self, classifier) -> None:
        self.classifier = classifier
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

    @property
    def review_threshold(self) -> float:
        model_threshold = self.classifier.review_threshold if self.classifier is not None else 0.9
        return self.settings.effective_threshold(model_threshold)

    def model_info(self) -> dict:
        return self.classifier.identity if self.classifier is not None else {}

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
        if profile_changed and not self.batch.running:
            self.classifier = None
            self.load_model(self.model_dir)

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
        self.lab.cancel()
        self.batch.wait(5.0)
        self.pool.waitForDone(5000)
        if self.cases.case_lock is not None:
            self.cases.case_lock.unlock()
        self.store.close()
        super().closeEvent(event)
