"""The case store on disk: a damaged file at start-up is moved aside with a message (never a traceback), a daily
copy is made and can be restored, an unexpected error goes to a log and a dialog, and unreadable settings say so."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading

import pytest
from conftest import make_window
from fakes import FakeClassifier
from PySide6.QtWidgets import QMessageBox

from wbc_desktop.core.backup import StoreDamaged, backups, check_store, daily_backup
from wbc_desktop.core.store import CaseStore
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.store_actions import restore_backup


@pytest.mark.parametrize("content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_store_is_moved_aside_and_the_window_opens_with_a_new_one(qtbot, tmp_path, content):
    path = tmp_path / "cases.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreDamaged):
        check_store(path)
    window = make_window(qtbot, FakeClassifier(), store_path=path)
    assert window.integrity_banner.isVisible() and "was damaged" in window.integrity_banner.text()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("cases.sqlite.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == content  # kept for investigation, byte for byte
    assert window.cases.new_case() is not None and window.store.case_infos()  # the new store works


def test_a_page_damaged_inside_a_real_store_is_found(tmp_path):
    path = tmp_path / "cases.sqlite"
    store = CaseStore(path)
    case = store.create_case(sample_id="S-1")
    case.add_results((f"c{i}.png", "neutrophil", {"neutrophil": 0.9}) for i in range(3000))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 3 + 200] = b"\x07" * 200  # a bad sector in the middle of the cells
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged):
        check_store(path)


def test_a_daily_copy_is_made_and_restored(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    window = make_window(qtbot, FakeClassifier(), store_path=path)
    first = window.cases.new_case()
    first.update_details(sample_id="KEEP", who="Ana")
    window.backup_thread.join(10)
    # tomorrow's copy holds KEEP (relative to the day the test runs: the window made today's copy already)
    name = f"cases-{dt.date.today() + dt.timedelta(days=1)}.sqlite"
    copy = daily_backup(path, tmp_path / "backups", today=dt.date.today() + dt.timedelta(days=1))
    assert backups(tmp_path / "backups")[0].name == name
    window.cases.new_case().update_details(sample_id="LATER", who="Ana")
    restore_backup(window, copy)
    assert window.store.case_infos()[0].sample_id == "KEEP"
    assert f"Restored {name}" in window.banner.text()
    assert any(p.name.startswith("cases.sqlite.before-restore-") for p in tmp_path.iterdir())
    assert window.store.verify_all() and all(i.intact for i in window.store.verify_all())


def test_old_daily_copies_beyond_two_weeks_are_removed(tmp_path):
    path = tmp_path / "cases.sqlite"
    CaseStore(path).close()
    for day in range(20):
        daily_backup(path, tmp_path / "backups", today=dt.date(2026, 11, 1) + dt.timedelta(days=day))
    kept = backups(tmp_path / "backups")
    assert len(kept) == 14 and kept[0].name == "cases-2026-11-20.sqlite"


def test_an_unexpected_error_is_logged_and_shown(qtbot, tmp_path, monkeypatch):
    from wbc_desktop.gui.crash import install

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test (install replaces them)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    hook = install(tmp_path)
    try:
        raise ValueError("boom in a slot")
    except ValueError as error:
        hook(type(error), error, error.__traceback__)
    log = (tmp_path / "wbc-desktop.log").read_text()
    assert "boom in a slot" in log and "Traceback" in log
    assert shown and "boom in a slot" in shown[0] and "wbc-desktop.log" in shown[0]


@pytest.mark.parametrize("raw", ["[" * 100_000 + "]" * 100_000, "{not json", "[1, 2]"])
def test_unreadable_settings_say_so_and_the_defaults_are_used(qtbot, raw):
    settings_store.qsettings().setValue("lab/settings", raw)
    settings = settings_store.load_settings()
    assert settings.target_count == 100 and "cannot be read" in settings_store.load_problem
    window = make_window(qtbot, FakeClassifier())
    assert "saved settings" in window.banner.text() or "unfinished" in window.banner.text()
    settings_store.save_settings(settings)
    assert settings_store.load_settings() and settings_store.load_problem == ""
    assert json.loads(settings_store.qsettings().value("lab/settings"))["target_count"] == 100
