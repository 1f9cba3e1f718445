"""The window's menus, actions and review keys, built as free functions over the window (as napari builds its
menus): what each entry does lives in the window's parts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QMenu

from wbc_desktop.core.classes import DEFAULT_KEY_MAP
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.store_actions import restore_backup_dialog


def open_images_dialog(window) -> None:
    files, _ = QFileDialog.getOpenFileNames(
        window, "Open images", "", "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff);;All files (*)"
    )
    if files:
        window.classify_paths(files)


def open_folder_dialog(window) -> None:
    folder = QFileDialog.getExistingDirectory(window, "Open folder")
    if folder:
        window.classify_paths([folder])


def fill_recent(window) -> None:
    window.recent_menu.clear()
    for folder in settings_store.recent_folders():
        add_action(window, window.recent_menu, folder, lambda checked=False, f=folder: window.classify_paths([f]))
    window.recent_menu.setEnabled(bool(window.recent_menu.actions()))


def build_menus(window) -> QMenu:
    """File, Edit, Case, Settings and Help; returns the Recent folders menu (refilled as folders are opened)."""
    file_menu = window.menuBar().addMenu("&File")
    add_action(window, file_menu, "Open &images…", lambda: open_images_dialog(window), QKeySequence.StandardKey.Open)
    add_action(window, file_menu, "Open &folder…", lambda: open_folder_dialog(window), "Ctrl+Shift+O")
    recent_menu = file_menu.addMenu("&Recent folders")
    window.recent_menu = recent_menu
    fill_recent(window)
    file_menu.addSeparator()
    add_action(window, file_menu, "&New case", window.cases.new_case, QKeySequence.StandardKey.New)
    add_action(window, file_menu, "Open &case…", window.cases.choose_case_dialog)
    file_menu.addSeparator()
    add_action(window, file_menu, "Export &CSV…", lambda: window.cases.export_dialog("csv"))
    add_action(window, file_menu, "Export &JSON…", lambda: window.cases.export_dialog("json"))
    add_action(window, file_menu, "Export &PDF report…", lambda: window.cases.export_dialog("pdf"), "Ctrl+P")
    add_action(window, file_menu, "Send to &LIS (HL7)", window.cases.send_to_lis)
    add_action(window, file_menu, "&Retry sending to LIS", lambda: window.lis.deliver(window.settings))
    file_menu.addSeparator()
    add_action(window, file_menu, "Restore &backup…", lambda: restore_backup_dialog(window))
    add_action(window, file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    edit_menu = window.menuBar().addMenu("&Edit")
    undo = window.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = window.undo_stack.createRedoAction(window, "&Redo")
    # Ctrl+Shift+Z everywhere, and the platform's own redo where it differs (Ctrl+Y on Windows); on X11 and macOS
    # the platform's IS Ctrl+Shift+Z, and the same key twice made Qt call the shortcut ambiguous: no redo at all
    redo_keys = [QKeySequence("Ctrl+Shift+Z")]
    redo_keys += [key for key in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) if key not in redo_keys]
    redo.setShortcuts(redo_keys)
    edit_menu.addActions([undo, redo])
    edit_menu.addSeparator()
    window.confirm_page_action = add_action(
        window, edit_menu, "Confirm the cells shown in this &column", window.review.confirm_page, "Ctrl+Return"
    )
    # the keypad's Enter too (Qt names it Enter, the main key Return; with Ctrl it is the keypad modifier's key)
    window.confirm_page_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
    add_action(window, edit_menu, "&Next column", lambda: window.review.next_column(1), "Ctrl+PgDown")
    add_action(window, edit_menu, "&Previous column", lambda: window.review.next_column(-1), "Ctrl+PgUp")
    window.undo_action, window.redo_action = undo, redo
    case_menu = window.menuBar().addMenu("&Case")
    add_action(window, case_menu, "&Sign out…", window.cases.ask_sign_out)
    add_action(window, case_menu, "&Amend signed report…", window.cases.amend_dialog)
    add_action(window, case_menu, "New signing &account…", window.cases.add_account_dialog)
    add_action(window, case_menu, "&Audit trail…", window.cases.show_audit)
    settings_menu = window.menuBar().addMenu("&Settings")
    add_action(window, settings_menu, "&Preferences…", window.open_settings)
    add_action(window, settings_menu, "&Adapt to my lab…", window.lab.adapt_to_lab)
    add_action(window, settings_menu, "&Roll back the lab model", window.lab.roll_back)
    help_menu = window.menuBar().addMenu("&Help")
    add_action(window, help_menu, "&About WBC Desktop", window.show_about)
    return recent_menu


def add_action(window, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_shortcuts(window) -> list[QShortcut]:
    """Keyboard review: 1-8 classes (key map), 0 or X exclude, Enter/Space confirm.

    Bound to the cell views only, so typing a sample ID or a WBC count never reclassifies a cell.
    """
    shortcuts: list[QShortcut] = []
    bindings = [(key, lambda k=key: window.review.key_label(k)) for key in DEFAULT_KEY_MAP]
    bindings += [(key, lambda: window.review.label_current(None)) for key in ("0", "X")]
    bindings += [(key, window.review.confirm_current) for key in ("Return", "Enter", "Space")]
    bindings += [("Z", window.review.zoom_current)]
    for key, slot in bindings:
        shortcut = QShortcut(QKeySequence(key), window.tabs)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)
        shortcuts.append(shortcut)
    return shortcuts
