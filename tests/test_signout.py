"""Sign-out checks: refused while model calls are unverified or the count is short, with a jump to the first cell
to verify; an incomplete sign-out needs a typed reason, which the report prints; old stores gain the column."""

from __future__ import annotations

import sqlite3
import unicodedata

import pytest
from conftest import drop, make_window, signer, solid_images
from fakes import FakeClassifier
from PySide6.QtWidgets import QInputDialog, QMessageBox

from wbc_desktop.core.signout import SignOutRefused
from wbc_desktop.core.store import CaseStore
from wbc_desktop.gui.models import REVIEW_GROUP


def answer_check_with(monkeypatch, button_text: str | None) -> list[str]:
    """Stand in for the person at the sign-out check: note what it says, then press ``button_text`` (or close)."""
    shown: list[str] = []

    def exec_(box):
        shown.append(box.text() + "\n" + box.informativeText())
        chosen = next((b for b in box.buttons() if b.text() == button_text), None)
        if chosen is not None:
            chosen.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return shown


def answer_prompts(monkeypatch, *answers: str) -> None:
    queue = list(answers)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (queue.pop(0), True))


def sign_as(monkeypatch, window, password: str = "correct horse", wrong_first: bool = False) -> list[str]:
    """Stand in for the signer at the signature dialog: type the password of the account (a wrong one first, if
    asked) and press Sign; what the dialog said back is collected."""
    from wbc_desktop.gui.signature_dialog import SignatureDialog

    signer(window)  # the account exists
    said: list[str] = []

    def exec_(dialog):
        attempts = ["wrong password", password] if wrong_first else [password]
        for attempt in attempts:
            dialog.password.setText(attempt)
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
            said.append(dialog.error.text())
        return dialog.result()

    monkeypatch.setattr(SignatureDialog, "exec", exec_)
    return said


def loaded_window(qtbot, tmp_path, count: int, confidence: float = 0.95):
    window = make_window(qtbot, FakeClassifier(confidence=confidence))
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", count))
    return window


def test_refused_while_calls_are_unverified_and_the_count_is_short(qtbot, tmp_path, monkeypatch):
    window = loaded_window(qtbot, tmp_path, 3)
    shown = answer_check_with(monkeypatch, "Cancel")
    answer_prompts(monkeypatch, "x")
    window.cases.ask_sign_out()
    assert not window.case.locked
    assert "3 model call(s) not verified" in shown[0] and "3 of 100 white cells counted" in shown[0]
    with pytest.raises(SignOutRefused):  # the store refuses too, whoever calls it
        window.case.sign_out("x")


def test_the_check_jumps_to_the_first_cell_waiting_for_review(qtbot, tmp_path, monkeypatch):
    window = loaded_window(qtbot, tmp_path, 4, confidence=0.5)  # all four in Needs review
    answer_check_with(monkeypatch, "Go to the first cell to verify")
    window.cases.ask_sign_out()
    assert not window.case.locked and window.tabs.currentWidget() is window.gallery
    assert window.current_cell_id == window.gallery.cell_ids(REVIEW_GROUP)[0]


def test_allowed_once_every_call_is_verified_and_the_target_reached(qtbot, tmp_path, monkeypatch):
    window = loaded_window(qtbot, tmp_path, 100)
    shown = answer_check_with(monkeypatch, "Cancel")
    for cell in window.case.cells[:99]:
        window.review.reclassify([cell.id], cell.label)  # confirmed by a person
    sign_as(monkeypatch, window)
    window.cases.ask_sign_out()
    assert not window.case.locked and "1 model call(s) not verified" in shown[-1]
    assert "no sample ID" in shown[-1]  # a report that names no sample cannot be filed
    window.review.reclassify([window.case.cells[99].id], window.case.cells[99].label)
    window.case.update_details(sample_id="S-2026-100")
    said = sign_as(monkeypatch, window, wrong_first=True)
    window.cases.ask_sign_out()
    assert said == ["wrong user ID or password", ""]  # the wrong password was refused, the right one signed
    info = window.case.info
    assert window.case.locked and (info.signed_by, info.signer_id) == ("Ana Tech", "ana")
    assert info.signature_meaning == "reviewed and released" and info.incomplete_reason is None
    assert len(shown) == 1  # the second time nothing was missing: no check dialog


def test_incomplete_sign_out_needs_a_reason_and_the_report_says_so(qtbot, tmp_path, monkeypatch):
    pypdf = pytest.importorskip("pypdf")
    window = loaded_window(qtbot, tmp_path, 3)
    answer_check_with(monkeypatch, "Sign out incomplete…")
    answer_prompts(monkeypatch, "   ")  # no reason typed: nothing happens
    window.cases.ask_sign_out()
    assert not window.case.locked
    answer_prompts(monkeypatch, "haemolysed sample, only 3 cells")
    sign_as(monkeypatch, window)
    window.cases.ask_sign_out()
    assert window.case.locked and window.case.info.incomplete_reason == "haemolysed sample, only 3 cells"
    last = window.case.audit()[-1]
    assert last.action == "sign-out (reviewed and released) incomplete: haemolysed sample, only 3 cells"
    assert last.who == "Ana Tech (ana)"
    window.cases.export("pdf", tmp_path / "case.pdf")
    pages = pypdf.PdfReader(tmp_path / "case.pdf").pages
    text = unicodedata.normalize("NFKC", " ".join(" ".join(p.extract_text() for p in pages).split()))  # ligatures
    assert "INCOMPLETE" in text and "haemolysed sample, only 3 cells" in text
    assert "0 of 3 cells verified by a person" in text and "3 model calls not reviewed" in text
    assert "reviewed by a technician" not in text  # the old footer claimed more than was done


def test_a_store_written_by_the_previous_schema_opens_and_signs_out(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE cases (id INTEGER PRIMARY KEY, sample_id TEXT NOT NULL DEFAULT '', operator TEXT NOT NULL
            DEFAULT '', created TEXT NOT NULL, wbc_count REAL, target INTEGER NOT NULL DEFAULT 100, model TEXT NOT
            NULL DEFAULT '{}', signed_by TEXT, signed_at TEXT);
        CREATE TABLE cells (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), path TEXT NOT
            NULL, source TEXT, box TEXT, predicted TEXT NOT NULL, probabilities TEXT NOT NULL, label TEXT,
            status TEXT NOT NULL);
        INSERT INTO cases (id, sample_id, created) VALUES (1, 'OLD-1', '2026-11-30T10:00:00');
        INSERT INTO cells (case_id, path, predicted, probabilities, label, status)
            VALUES (1, 'a.jpg', 'neutrophil', '{"neutrophil": 0.99}', 'neutrophil', 'reviewed');
        """
    )
    old.close()
    store = CaseStore(path)
    case = store.open_case(1)
    assert case.info.sample_id == "OLD-1" and case.info.incomplete_reason is None and len(case.cells) == 1
    assert case.cells[0].foreign is False and case.cells[0].label == "neutrophil"  # cells gained foreign_call
    case.sign_out("Ana", "one cell from an old case")
    assert CaseStore(path).open_case(1).info.incomplete_reason == "one cell from an old case"
