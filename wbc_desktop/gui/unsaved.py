"""Writes that fail (the database locked by another program, a full disk, a read-only or vanished file) are
never lost and never silent: the change waits here, in order, under a red "not saved" bar with Retry."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.gui import style

T = TypeVar("T")
STORAGE_ERRORS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)


class UnsavedChanges(QObject):
    """``attempt(what, write)`` runs ``write`` now, or keeps it (with what it is) until :meth:`retry` saves it."""

    saved = Signal()  # every kept change is saved now

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pending: list[tuple[str, Callable[[], object]]] = []
        self.dropped: list[str] = []  # kept changes the case no longer allowed when retried (signed elsewhere)
        self.bar = QWidget()
        self.bar.setStyleSheet(style.ALARM_BAR)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(style.BOLD_PADDED)
        self.retry_button = QPushButton("Retry saving")
        self.retry_button.clicked.connect(self.retry)
        row = QHBoxLayout(self.bar)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(self.message, 1)
        row.addWidget(self.retry_button)
        self.bar.setVisible(False)

    def attempt(self, what: str, write: Callable[[], T]) -> T | None:
        """``write()``'s result; None when it failed (or waits behind an earlier unsaved change): it is kept."""
        if self.pending and not self.retry():
            self.pending.append((what, write))  # in order: never saved before an earlier change
            self._show(None)
            return None
        try:
            return write()
        except STORAGE_ERRORS as error:
            self.pending.append((what, write))
            self._show(error)
            return None

    def retry(self) -> bool:
        """Save the kept changes in order; True when none is left."""
        while self.pending:
            what, write = self.pending[0]
            try:
                write()
            except STORAGE_ERRORS as error:
                self._show(error)
                return False
            except CaseLockedError as error:  # signed in another window meanwhile: the change cannot be made
                self.dropped.append(f"{what}: {error}")
            self.pending.pop(0)
        self.bar.setVisible(False)
        self.saved.emit()
        return True

    def _show(self, error: Exception | None) -> None:
        first = self.pending[0][0]
        reason = f" ({error})" if error is not None else ""
        self.message.setText(
            f"NOT SAVED: {len(self.pending)} change(s), first: {first}{reason}. They are kept in this window "
            "until saved: free the database or the disk, then Retry. Do not close the window."
        )
        self.bar.setVisible(True)
