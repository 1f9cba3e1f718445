"""Signatures that mean something: an account per person (unique ID, never deleted), its password only as an
Argon2id hash, sign-out only with the account's password, and the record names the account, not whatever is in
the Operator box."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtWidgets import QDialog
from test_signout import loaded_window, sign_as

from wbc_desktop.accounts.store import Accounts, SignatureError
from wbc_desktop.gui.signature_dialog import SignatureDialog


@pytest.fixture
def accounts(tmp_path):
    return Accounts(sqlite3.connect(tmp_path / "cases.sqlite", isolation_level=None))


def test_a_password_is_kept_only_as_an_argon2id_hash(accounts, tmp_path):
    accounts.add("ana", "Ana Tech", "correct horse")
    stored = accounts.db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and b"correct horse" not in (tmp_path / "cases.sqlite").read_bytes()
    assert accounts.authenticate("ana", "correct horse").signature == "Ana Tech (ana)"


@pytest.mark.parametrize(("user_id", "password"), [("ana", "wrong horse"), ("bob", "correct horse"), ("ana", "")])
def test_a_wrong_password_or_unknown_id_gets_one_message(accounts, user_id, password):
    accounts.add("ana", "Ana Tech", "correct horse")
    with pytest.raises(SignatureError, match=r"^wrong user ID or password$"):
        accounts.authenticate(user_id, password)


@pytest.mark.parametrize(
    ("user_id", "name", "password", "found"),
    [
        ("ana", "Another Ana", "long enough", "taken"),
        ("a b", "Bo", "long enough", "letters, digits"),
        ("bo", "  ", "long enough", "full name"),
        ("bo", "Bo", "short", "at least 8"),
    ],
)
def test_taken_ids_and_weak_accounts_are_refused(accounts, user_id, name, password, found):
    accounts.add("ana", "Ana Tech", "correct horse")
    with pytest.raises(SignatureError, match=found):
        accounts.add(user_id, name, password)


def test_an_account_is_never_deleted_nor_its_id_changed(accounts):
    accounts.add("ana", "Ana Tech", "correct horse")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        accounts.db.execute("DELETE FROM users")
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        accounts.db.execute("UPDATE users SET user_id = 'eve'")


def test_the_first_sign_out_creates_the_first_account(qtbot, window, tmp_path):
    dialog = SignatureDialog(window.accounts, window)
    qtbot.addWidget(dialog)
    assert dialog.creating and dialog.windowTitle() == "New signing account"
    dialog.name.setText("Ana Tech")
    dialog.user_id.setText("ana")
    dialog.password.setText("correct horse")
    dialog.repeat.setText("correct hors")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert "differ" in dialog.error.text() and dialog.result() != QDialog.DialogCode.Accepted
    dialog.password.setText("correct horse")
    dialog.repeat.setText("correct horse")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.user.user_id == "ana"
    assert [user.signature for user in window.accounts.users()] == ["Ana Tech (ana)"]


def test_the_signer_is_the_account_not_the_operator_box(qtbot, tmp_path, monkeypatch):
    window = loaded_window(qtbot, tmp_path, 2)
    window.settings.target_count = 2
    window.case.update_details(target=2, operator="Mallory", sample_id="S-1", who="Mallory")
    for cell in window.case.cells:
        window.review.reclassify([cell.id], cell.label)
    sign_as(monkeypatch, window)
    window.cases.ask_sign_out()
    info = window.case.info
    assert info.signed and (info.signed_by, info.signer_id) == ("Ana Tech", "ana") and info.operator == "Mallory"
    assert window.case.audit()[-1].who == "Ana Tech (ana)"
    assert window.store.verify(window.case.id).intact  # the signer's ID and the meaning are sealed too
