"""The case store's file: opened with a damaged one moved aside, copied daily, restored from a copy (File ›
Restore backup). Free functions over the window, as napari's menu actions are."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from PySide6.QtWidgets import QInputDialog, QMessageBox

from wbc_desktop.accounts.store import Accounts
from wbc_desktop.core.backup import StoreDamaged, backups, check_store, daily_backup, move_aside, restore
from wbc_desktop.core.store import CaseStore


def open_store(path: Path) -> tuple[CaseStore, str]:
    """The case store, and what happened on the way ("" if nothing): a damaged file is moved aside (kept for
    investigation) and a new one started."""
    notice = ""
    try:
        check_store(path)
    except StoreDamaged as error:
        moved = move_aside(path)
        notice = (
            f"The case store was damaged ({error}) and was moved aside to {moved}. A new, empty store is in "
            "use: File › Restore backup… brings back a daily copy."
        )
    return CaseStore(path), notice


def backup_folder(store_path: Path) -> Path:
    return store_path.parent / "backups"


def backup_today(store_path: Path) -> None:
    """Today's copy (run on a thread at start-up); a backup that fails must not stop the work: it is logged."""
    try:
        daily_backup(store_path, backup_folder(store_path))
    except (OSError, sqlite3.Error) as error:
        logging.getLogger("wbc_desktop").warning("daily backup failed: %s", error)


def restore_backup_dialog(window) -> None:
    copies = backups(backup_folder(window.store.path))
    if not copies:
        QMessageBox.information(window, "Restore backup", "There is no backup yet (one is made each day).")
        return
    names = [copy.name for copy in copies]
    choice, ok = QInputDialog.getItem(window, "Restore backup", "Replace the case store with:", names, 0, False)
    if ok:
        restore_backup(window, copies[names.index(choice)])


def restore_backup(window, backup: Path) -> None:
    """Put a daily copy in place of the store; the current one is moved aside, never deleted."""
    window.cancel()
    window.cases.set_case(None)
    path = window.store.path
    window.store.close()
    try:
        moved = restore(path, backup)
    except (OSError, StoreDamaged) as error:
        window.store = CaseStore(path)
        window.show_banner(f"The backup was not restored: {error}")
        return
    window.store = CaseStore(path)
    window.accounts = Accounts(window.store.db)
    window.show_banner(f"Restored {backup.name}." + (f" The store before was kept as {moved.name}." if moved else ""))
