"""The electronic signature at sign-out: the signer picks their account and types its password; the meaning of
the signature is stated above the buttons. With no account yet, the dialog creates the first one."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from wbc_desktop.accounts.store import MEANING, Accounts, SignatureError, User
from wbc_desktop.gui import style


class SignatureDialog(QDialog):
    def __init__(self, accounts: Accounts, parent=None, create: bool = False):
        super().__init__(parent)
        self.accounts = accounts
        self.user: User | None = None
        self.creating = create or not accounts.users()
        self.setWindowTitle("New signing account" if self.creating else "Sign out")
        form = QFormLayout()
        self.account = QComboBox()
        self.name, self.user_id = QLineEdit(), QLineEdit()
        self.password, self.repeat = QLineEdit(), QLineEdit()
        for field in (self.password, self.repeat):
            field.setEchoMode(QLineEdit.EchoMode.Password)
        if self.creating:
            form.addRow(QLabel("Create a signing account (a unique ID per person, never reused)."))
            form.addRow("Full name", self.name)
            form.addRow("User ID", self.user_id)
            form.addRow("Password", self.password)
            form.addRow("Repeat password", self.repeat)
        else:
            for user in accounts.users():
                self.account.addItem(user.signature, user.user_id)
            form.addRow("Account", self.account)
            form.addRow("Password", self.password)
        self.meaning = QLabel(f"Meaning of this signature: <b>{MEANING}</b>")
        self.error = QLabel("")
        self.error.setStyleSheet(style.ERROR_TEXT)
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create account" if self.creating else "Sign")
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        if not create:
            layout.addWidget(self.meaning)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def try_accept(self) -> None:
        """Check the password (or create the account); a mistake is shown here and the dialog stays open."""
        self.error.clear()
        try:
            if self.creating:
                if self.password.text() != self.repeat.text():
                    raise SignatureError("the two passwords differ")
                self.user = self.accounts.add(self.user_id.text(), self.name.text(), self.password.text())
            else:
                self.user = self.accounts.authenticate(self.account.currentData() or "", self.password.text())
        except SignatureError as error:
            self.error.setText(str(error))
            self.password.clear()
            self.repeat.clear()
            return
        self.accept()
