"""Case actions of the main window: create, resume, edit, sign out, audit, export."""

from __future__ import annotations

import getpass
from functools import partial
from pathlib import Path

from PySide6.QtCore import QLockFile
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
)

from wbc_desktop.accounts.store import MEANING, User
from wbc_desktop.core.case import Case, case_report, signed_context
from wbc_desktop.core.export import ExportError, write_csv, write_json
from wbc_desktop.core.images import display_text
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.core.signout import SignOutRefused, sign_out_check
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.report import write_pdf
from wbc_desktop.gui.signature_dialog import SignatureDialog
from wbc_desktop.gui.unsaved import STORAGE_ERRORS
from wbc_desktop.lis.hl7 import HL7Error
from wbc_desktop.paths import user_data_dir


class CaseActions:
    """Mixin for MainWindow: the case lifecycle and exports."""

    # --- cases ---------------------------------------------------------------------------------------------
    @property
    def who(self) -> str:
        return (self.case.info.operator if self.case else "") or self.settings.operator or getpass.getuser()

    def new_case(self) -> Case | None:
        """A new, empty case; None (and a banner saying why) when the case store cannot be written."""
        self.cancel()
        try:
            case = self.store.create_case(
                operator=self.case_bar.operator.text().strip() or self.settings.operator,
                model=self.model_info(),
                target=self.settings.target_count,
            )
        except STORAGE_ERRORS as error:
            self.show_banner(f"No new case: the case store cannot be written ({error}). Free it, then try again.")
            return None
        self.set_case(case)
        return case

    def set_case(self, case: Case | None) -> None:
        """Show ``case`` and nothing of the previous one: its cells, field, banner (an other-lab warning over a
        new PBC case would be false) and status text go."""
        self.case = case
        self._hold_case_lock(case)
        self.undo_stack.clear()  # undo is for this case's changes only
        self.domain_scores = []
        self.banner.setVisible(False)
        self.resume_button.setVisible(False)
        self.statusBar().clearMessage()
        self.current_cell_id = None
        self.cells_model.set_case(case)
        self.gallery.invalidate()
        self.case_bar.show_case(case.info if case else None)
        self.differential_panel.set_wbc_count(case.info.wbc_count if case else None)
        self.problems.clear()
        for path, message in case.errors if case else []:
            self.problems.addItem(f"{display_text(path)}: {message}")
        self.update_problem_tab()
        self.detail.clear()
        self.refresh_differential()
        self._load_thumbnails_later()
        self.integrity_banner.setVisible(False)
        if case is not None:
            self.check_integrity(case)
            if case.read_only:
                self.show_banner(f"Read-only: {case.read_only}.")

    def _hold_case_lock(self, case: Case | None) -> None:
        """One window changes a case at a time: an open case is locked with a file beside the store (QLockFile:
        a lock left by a crashed app is taken over); a second window shows the case read-only."""
        if self.case_lock is not None:
            self.case_lock.unlock()
            self.case_lock = None
        if case is None or case.info.signed:
            return
        lock = QLockFile(f"{self.store.path}.case-{case.id}.lock")
        if lock.tryLock(0):
            self.case_lock = lock
            return
        pid, host = lock.getLockInfo()[-3:-1]  # (pid, host, app); older bindings put a bool first
        case.read_only = f"the case is open in another WBC Desktop window (process {pid} on {host or 'this computer'})"

    def check_integrity(self, case: Case) -> bool:
        """Verify the case's audit chain and seal (core.integrity); a break is shown in red, never hidden."""
        integrity = self.store.verify(case.id)
        self.integrity_banner.setVisible(not integrity.intact)
        if not integrity.intact:
            self.integrity_banner.setText(
                "This record was altered outside WBC Desktop: "
                + "; ".join(integrity.problems)
                + ". Do not release it; keep the database file for investigation."
            )
        return integrity.intact

    def resume_case(self, case_id: int) -> Case:
        case = self.store.open_case(case_id)
        self.set_case(case)
        return case

    def _offer_resume(self) -> None:
        unfinished = [info for info in self.store.case_infos(unfinished_only=True) if info.cell_count]
        if unfinished:
            latest = unfinished[0]
            self._resume_candidate = latest.id
            self.show_banner(
                f"{len(unfinished)} unfinished case(s). Latest: “{latest.sample_id or 'no ID'}”, "
                f"{latest.cell_count} cells, started {latest.created[:16].replace('T', ' ')}.",
                resume=True,
            )

    def _resume_offered(self) -> None:
        self.resume_case(self._resume_candidate)

    def choose_case_dialog(self) -> None:
        infos = self.store.case_infos()
        if not infos:
            QMessageBox.information(self, "Open case", "There are no saved cases yet.")
            return
        names = [
            f"#{i.id} {i.sample_id or '(no ID)'} · {i.cell_count} cells · {i.created[:16].replace('T', ' ')}"
            + (" · signed" if i.signed else "")
            for i in infos
        ]
        choice, ok = QInputDialog.getItem(self, "Open case", "Case:", names, 0, False)
        if ok:
            self.resume_case(infos[names.index(choice)].id)

    def _details_changed(self, sample_id: str, operator: str) -> None:
        if self.closing:
            return
        info = self.case.info if self.case is not None else None
        if info is not None and not self.case.locked and (info.sample_id, info.operator) != (sample_id, operator):
            try:
                self.unsaved.attempt(
                    "sample ID / operator",
                    partial(self.case.update_details, sample_id=sample_id, operator=operator, who=operator or self.who),
                )
            except CaseLockedError as error:
                self.show_banner(str(error))
                self.case_bar.show_case(self.case.info)
        if operator and operator != self.settings.operator:
            self.settings.operator = operator
            settings_store.save_settings(self.settings)

    def _collected_changed(self, text: str) -> None:
        if self.closing or self.case is None or self.case.locked:
            return
        if (self.case.info.collected or "") == (text.replace(" ", "T", 1) if text else ""):
            return
        try:
            self.unsaved.attempt(
                "collection time", partial(self.case.update_details, collected=text or None, who=self.who)
            )
        except (ValueError, CaseLockedError) as error:
            self.show_banner(str(error))
        self.case_bar.show_case(self.case.info)

    def _wbc_count_changed(self, value: float | None) -> None:
        if self.case is not None and not self.case.locked:
            try:
                self.unsaved.attempt("WBC count", partial(self.case.update_details, wbc_count=value, who=self.who))
            except CaseLockedError as error:
                self.show_banner(str(error))
                self.case_bar.show_case(self.case.info)
            self.refresh_differential()

    def ask_sign_out(self) -> None:
        """Sign out after the check (core.signout): what is missing is listed, with a jump to the first cell
        to verify, and signing out anyway needs a typed reason that the report prints."""
        if self.case is None or self.case.locked:
            return
        if self.batch.running:  # cells still arriving: the check would judge a part of the case
            QMessageBox.information(
                self, "Sign out", "Wait until the batch is classified (or cancel it), then sign out."
            )
            return
        reason = None
        check = sign_out_check(self.case)
        if not check.complete:
            box = QMessageBox(QMessageBox.Icon.Warning, "Sign out", "This case is not ready to sign out.", parent=self)
            box.setInformativeText("\n".join(f"• {problem}" for problem in check.problems()))
            go = box.addButton("Go to the first cell to verify", QMessageBox.ButtonRole.AcceptRole)
            go.setEnabled(bool(check.unverified))
            incomplete = box.addButton("Sign out incomplete…", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(go)
            box.exec()
            if box.clickedButton() is go:
                self.go_to_unverified(check.unverified)
                return
            if box.clickedButton() is not incomplete:
                return
            reason, ok = QInputDialog.getText(
                self, "Sign out incomplete", "Why is it signed out incomplete? (printed at the top of the report)"
            )
            if not ok or not reason.strip():
                return
        dialog = SignatureDialog(self.accounts, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.user is not None:
            self.sign_out(dialog.user, reason)

    def go_to_unverified(self, unverified: tuple[int, ...]) -> None:
        """The gallery, on the first cell of the Needs review column, else the first unverified cell."""
        waiting = [cell_id for cell_id in unverified if self.case.cell(cell_id).needs_review(self.review_threshold)]
        self.tabs.setCurrentWidget(self.gallery)
        self.select_cell((waiting or list(unverified))[0])

    def sign_out(self, signer: User, incomplete_reason: str | None = None) -> bool:
        """Sign out as ``signer`` (an account whose password was just checked: SignatureDialog); refused (the
        banner says why) while the check lists problems and no reason is given."""
        assert self.case is not None
        if self.batch.running:
            self.show_banner("Sign-out waits for the batch: its cells are still being classified.")
            return False
        context = signed_context(self.classes, self.settings.reference_ranges, self.review_threshold)
        context.update(lab_name=self.settings.lab_name, lab_address=self.settings.lab_address)  # printed as signed
        try:
            self.case.sign_out(signer.name, incomplete_reason, context, signer.user_id, MEANING)
        except (SignOutRefused, CaseLockedError) as refusal:
            self.show_banner(str(refusal))
            self.case_bar.show_case(self.case.info)
            return False
        except STORAGE_ERRORS as error:  # a signature is given again, never replayed later: not kept
            self.show_banner(f"NOT signed out: the case store cannot be written ({error}). Sign out again.")
            return False
        self.case_bar.show_case(self.case.info)
        self.undo_stack.clear()  # a signed case does not change (amendments are another matter)
        if self.settings.lis_folder or (self.settings.lis_host and self.settings.lis_port):
            self.send_to_lis()  # released: the result goes to the LIS, as an analyser's validated result does
        return True

    def send_to_lis(self) -> None:
        """Queue the signed case's HL7 result and deliver the queue in the background (status bar says how)."""
        if self.case is None or not self.case.info.signed:
            QMessageBox.information(self, "Send to LIS", "Only a signed-out case is sent to the LIS.")
            return
        try:
            self.lis.send_case(self.case, self.who, self.settings, user_data_dir())
        except (HL7Error, OSError) as error:
            self.show_banner(f"The result was not queued for the LIS: {error}")

    # --- exports -------------------------------------------------------------------------------------------
    def export(self, kind: str, path: str | Path, overwrite: bool = False) -> None:
        """Write the case as ``csv``, ``json`` or ``pdf``; refuses to replace a file unless ``overwrite``."""
        if self.case is None:
            raise ExportError("there is no case to export")
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or confirm replacing it")
        cells, differential, report = case_report(
            self.case, self.classes, self.settings.reference_ranges, self.review_threshold
        )
        if kind == "csv":
            write_csv(path, cells, self.classes, differential)
        elif kind == "json":
            write_json(path, report)
        elif kind == "pdf":
            write_pdf(path, self.case, differential, self.settings.lab_name, self.settings.lab_address)
        else:
            raise ValueError(kind)
        self.case.record_export(kind, path.name, self.who)

    def export_dialog(self, kind: str) -> None:
        if self.case is None:
            QMessageBox.information(self, "Export", "Open or create a case first.")
            return
        name = f"{self.case.info.sample_id or f'case-{self.case.id}'}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {kind.upper()}", name, f"{kind.upper()} (*.{kind})")
        if not path:
            return
        try:
            self.export(kind, path, overwrite=True)  # the save dialog already asked before replacing
        except (ExportError, OSError) as error:
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Exported {path}", 5000)

    def amend_dialog(self) -> None:
        """Case › Amend signed report: a new, open version of the signed case (the original is kept and printed
        as superseded); correct it, then sign it out like any case."""
        if self.case is None or not self.case.info.signed:
            QMessageBox.information(
                self, "Amend", "Only a signed-out case is amended; an open case is changed directly."
            )
            return
        reason, ok = QInputDialog.getText(self, "Amend signed report", "Why is the report amended? (printed on it)")
        if ok and reason.strip():
            self.amend(reason)

    def amend(self, reason: str) -> Case:
        amendment = self.store.amend(self.case.id, reason, self.who)
        self.set_case(amendment)
        self.show_banner(f"Amendment of case {amendment.info.amends}: correct the cells, then sign it out.")
        return amendment

    def add_account_dialog(self) -> None:
        """Case › New signing account: each person who signs out gets their own account."""
        dialog = SignatureDialog(self.accounts, self, create=True)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.user is not None:
            self.statusBar().showMessage(f"Signing account {dialog.user.signature} created", 5000)

    def show_audit(self) -> None:
        if self.case is None:
            return
        from wbc_desktop.gui.audit_dialog import AuditDialog

        self.audit_dialog = AuditDialog(self.case.audit(), self.case.info.sample_id or f"case {self.case.id}", self)
        self.audit_dialog.open()
