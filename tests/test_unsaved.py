"""A write the database refuses (locked by another program, disk full) is kept, shown in red and saved by Retry;
a batch goes on and its results are kept; nothing raises inside a Qt slot."""

from __future__ import annotations

import sqlite3

from conftest import drop, make_window, solid_images
from fakes import FakeClassifier
from PySide6.QtCore import Qt


def lock(path) -> sqlite3.Connection:
    """Another program holding the database's write lock (as a backup tool or a second app might)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_a_key_on_a_locked_database_is_kept_shown_and_saved_by_retry(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    window = make_window(qtbot, FakeClassifier(), store_path=path)
    window.store.db.execute("PRAGMA busy_timeout=100")  # the test need not wait the full second
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 3))
    first = window.case.cells[0].id
    window.activateWindow()
    window.table.setFocus()
    window.review.select_cell(first)
    other = lock(path)
    qtbot.keyClick(window.table, Qt.Key.Key_4)  # lymphocyte, while the database is locked
    assert window.unsaved.bar.isVisible() and "NOT SAVED: 1 change(s)" in window.unsaved.message.text()
    assert "database is locked" in window.unsaved.message.text()
    assert window.case.cell(first).label != "lymphocyte"  # not pretended: the cell shows what is saved
    other.execute("ROLLBACK")
    other.close()
    with qtbot.waitSignal(window.unsaved.saved, timeout=5_000):
        qtbot.mouseClick(window.unsaved.retry_button, Qt.MouseButton.LeftButton)
    assert not window.unsaved.bar.isVisible()
    stored = window.store.open_case(window.case.id)
    assert stored.cell(first).label == "lymphocyte" and stored.audit()[-1].to_label == "lymphocyte"


def test_batch_results_arriving_while_the_database_is_locked_are_kept(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    window = make_window(qtbot, FakeClassifier(), store_path=path)
    window.store.db.execute("PRAGMA busy_timeout=100")
    window.cases.new_case()
    other = lock(path)
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):  # the batch finishes (no endless progress)
        drop(window, solid_images(tmp_path / "cells", 5))
    assert window.unsaved.pending and window.unsaved.bar.isVisible() and not window.progress.isVisible()
    other.execute("ROLLBACK")
    other.close()
    assert window.unsaved.retry()
    assert len(window.store.open_case(window.case.id).cells) == 5 and window.cells_model.rowCount() == 5
