"""Case actions of the main window: create, resume, edit, sign out, audit, export."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
)

from wbc_desktop.accounts.store import MEANING, User
from wbc_desktop.core.atomic import ExportError
from wbc_desktop.core.case import Case, case_report, signed_context
from wbc_desktop.core.export import write_csv, write_json
from wbc_desktop.core.images import display_text
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.core.signout import SignOutRefused, sign_out_check
from wbc_desktop.gui import settings_store
from wbc_desktop.gui.audit_dialog import AuditDialog
from wbc_desktop.gui.report import write_pdf
from wbc_desktop.gui.signature_dialog import SignatureDialog
from wbc_desktop.gui.unsaved import STORAGE_ERRORS
from wbc_desktop.lis.hl7 import HL7Error
from wbc_desktop.paths import user_data_dir


class CaseController(QObject):
    """The window's part for the case's life: new, resume, header edits, integrity, the per-case lock, sign-out with
    a signature, amendments, exports, the LIS, accounts and the audit trail. The case itself is the window's (shared
    with the other parts); this part holds the lock and its dialogs."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.case_lock: QLockFile | None = None  # this window's hold on the open case
        self.audit_dialog = None
        self._resume_candidate: int | None = None

    # --- cases ---------------------------------------------------------------------------------------------
    @property
    def who(self) -> str:
        return self.window.session.who

    def new_case(self) -> Case | None:
        """A new, empty case; None (and a banner saying why) when the case store cannot be written."""
        self.window.cancel()
        try:
            case = self.window.store.create_case(
                operator=self.window.case_bar.operator.text().strip() or self.window.settings.operator,
                model=self.window.model_info(),
                target=self.window.settings.target_count,
            )
        except STORAGE_ERRORS as error:
            self.window.show_banner(
                f"No new case: the case store cannot be written ({error}). Free it, then try again."
            )
            return None
        self.set_case(case)
        return case

    def set_case(self, case: Case | None) -> None:
        """Show ``case`` and nothing of the previous one: its cells, field, banner (an other-lab warning over a
        new PBC case would be false) and status text go."""
        self.window.case = case
        self._hold_case_lock(case)
        self.window.undo_stack.clear()  # undo is for this case's changes only
        self.window.domain_scores = []
        self.window.banner.setVisible(False)
        self.window.resume_button.setVisible(False)
        self.window.statusBar().clearMessage()
        if not self.window.batch.running:  # "Done: 110 cells" was the previous case's batch
            self.window.rate.setText("")
        self.window.current_cell_id = None
        self.window.cells_model.set_case(case)
        self.window.gallery.invalidate()
        self.window.case_bar.show_case(case.info if case else None)
        self.window.differential_panel.set_wbc_count(case.info.wbc_count if case else None)
        self.window.problems.clear()
        for path, message in case.errors if case else []:
            self.window.problems.addItem(f"{display_text(path)}: {message}")
        self.window.update_problem_tab()
        self.window.detail.clear()
        self.window.refresh_differential()
        self.window.load_thumbnails_later()
        self.window.integrity_banner.setVisible(False)
        if case is not None:
            self.check_integrity(case)
            if case.read_only:
                self.window.show_banner(f"Read-only: {case.read_only}.")

    def _hold_case_lock(self, case: Case | None) -> None:
        """One window changes a case at a time: an open case is locked with a file beside the store (QLockFile:
        a lock left by a crashed app is taken over); a second window shows the case read-only."""
        if self.case_lock is not None:
            self.case_lock.unlock()
            self.case_lock = None
        if case is None or case.info.signed:
            return
        lock = QLockFile(f"{self.window.store.path}.case-{case.id}.lock")
        if lock.tryLock(0):
            self.case_lock = lock
            return
        pid, host = lock.getLockInfo()[-3:-1]  # (pid, host, app); older bindings put a bool first
        case.read_only = f"the case is open in another WBC Desktop window (process {pid} on {host or 'this computer'})"

    def check_integrity(self, case: Case) -> bool:
        """Verify the case's audit chain and seal (core.integrity); a break is shown in red, never hidden."""
        integrity = self.window.store.verify(case.id)
        self.window.integrity_banner.setVisible(not integrity.intact)
        if not integrity.intact:
            self.window.integrity_banner.setText(
                "This record was altered outside WBC Desktop: "
                + "; ".join(integrity.problems)
                + ". Do not release it; keep the database file for investigation."
            )
        return integrity.intact

    def resume_case(self, case_id: int) -> Case:
        case = self.window.store.open_case(case_id)
        self.set_case(case)
        return case

    def _offer_resume(self) -> None:
        unfinished = [info for info in self.window.store.case_infos(unfinished_only=True) if info.cell_count]
        if unfinished:
            latest = unfinished[0]
            self._resume_candidate = latest.id
            self.window.show_banner(
                f"{len(unfinished)} unfinished case(s). Latest: “{latest.sample_id or 'no ID'}”, "
                f"{latest.cell_count} cells, started {latest.created[:16].replace('T', ' ')}.",
                resume=True,
            )

    def _resume_offered(self) -> None:
        self.resume_case(self._resume_candidate)

    def choose_case_dialog(self) -> None:
        infos = self.window.store.case_infos()
        if not infos:
            QMessageBox.information(self.window, "Open case", "There are no saved cases yet.")
            return
        names = [
            f"#{i.id} {i.sample_id or '(no ID)'} · {i.cell_count} cells · {i.created[:16].replace('T', ' ')}"
            + (" · signed" if i.signed else "")
            for i in infos
        ]
        choice, ok = QInputDialog.getItem(self.window, "Open case", "Case:", names, 0, False)
        if ok:
            self.resume_case(infos[names.index(choice)].id)

    def _details_changed(self, sample_id: str, operator: str) -> None:
        if self.window.closing:
            return
        info = self.window.case.info if self.window.case is not None else None
        if (
            info is not None
            and not self.window.case.locked
            and (info.sample_id, info.operator) != (sample_id, operator)
        ):
            try:
                self.window.unsaved.attempt(
                    "sample ID / operator",
                    partial(
                        self.window.case.update_details,
                        sample_id=sample_id,
                        operator=operator,
                        who=operator or self.who,
                    ),
                )
            except CaseLockedError as error:
                self.window.show_banner(str(error))
                self.window.case_bar.show_case(self.window.case.info)
        if operator and operator != self.window.settings.operator:
            self.window.settings.operator = operator
            settings_store.save_settings(self.window.settings)

    def _collected_changed(self, text: str) -> None:
        if self.window.closing or self.window.case is None or self.window.case.locked:
            return
        if (self.window.case.info.collected or "") == (text.replace(" ", "T", 1) if text else ""):
            return
        try:
            self.window.unsaved.attempt(
                "collection time", partial(self.window.case.update_details, collected=text or None, who=self.who)
            )
        except (ValueError, CaseLockedError) as error:
            self.window.show_banner(str(error))
        self.window.case_bar.show_case(self.window.case.info)

    def _wbc_count_changed(self, value: float | None) -> None:
        if self.window.case is not None and not self.window.case.locked:
            try:
                self.window.unsaved.attempt(
                    "WBC count", partial(self.window.case.update_details, wbc_count=value, who=self.who)
                )
            except CaseLockedError as error:
                self.window.show_banner(str(error))
                self.window.case_bar.show_case(self.window.case.info)
            self.window.refresh_differential()

    def ask_sign_out(self) -> None:
        """Sign out after the check (core.signout): what is missing is listed, with a jump to the first cell
        to verify, and signing out anyway needs a typed reason that the report prints."""
        if self.window.case is None or self.window.case.locked:
            return
        if self.window.batch.running:  # cells still arriving: the check would judge a part of the case
            QMessageBox.information(
                self.window, "Sign out", "Wait until the batch is classified (or cancel it), then sign out."
            )
            return
        reason = None
        check = sign_out_check(self.window.case, self.window.settings.lab_categories)
        if not check.complete:
            box = QMessageBox(
                QMessageBox.Icon.Warning, "Sign out", "This case is not ready to sign out.", parent=self.window
            )
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
                self.window,
                "Sign out incomplete",
                "Why is it signed out incomplete? (printed at the top of the report)",
            )
            if not ok or not reason.strip():
                return
        dialog = SignatureDialog(self.window.accounts, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.user is not None:
            self.sign_out(dialog.user, reason)

    def go_to_unverified(self, unverified: tuple[int, ...]) -> None:
        """The gallery, on the first cell of the Needs review column, else the first unverified cell."""
        waiting = [
            cell_id
            for cell_id in unverified
            if self.window.case.cell(cell_id).needs_review(self.window.review_threshold)
        ]
        self.window.tabs.setCurrentWidget(self.window.gallery)
        self.window.review.select_cell((waiting or list(unverified))[0])
        self.window.review.focus_current()

    def sign_out(self, signer: User, incomplete_reason: str | None = None) -> bool:
        """Sign out as ``signer`` (an account whose password was just checked: SignatureDialog); refused (the
        banner says why) while the check lists problems and no reason is given."""
        assert self.window.case is not None
        if self.window.batch.running:
            self.window.show_banner("Sign-out waits for the batch: its cells are still being classified.")
            return False
        context = signed_context(
            self.window.classes,
            self.window.settings.reference_ranges,
            self.window.review_threshold,
            self.window.settings.lab_categories,
        )
        context.update(
            lab_name=self.window.settings.lab_name, lab_address=self.window.settings.lab_address
        )  # printed as signed
        try:
            self.window.case.sign_out(signer.name, incomplete_reason, context, signer.user_id, MEANING)
        except (SignOutRefused, CaseLockedError) as refusal:
            self.window.show_banner(str(refusal))
            self.window.case_bar.show_case(self.window.case.info)
            return False
        except STORAGE_ERRORS as error:  # a signature is given again, never replayed later: not kept
            self.window.show_banner(f"NOT signed out: the case store cannot be written ({error}). Sign out again.")
            return False
        self.window.case_bar.show_case(self.window.case.info)
        self.window.undo_stack.clear()  # a signed case does not change (amendments are another matter)
        self.window.lab.learn_from_signed_case()  # its verified cells teach the lab model (background)
        if self.window.settings.lis_folder or (self.window.settings.lis_host and self.window.settings.lis_port):
            self.send_to_lis()  # released: the result goes to the LIS, as an analyser's validated result does
        return True

    def send_to_lis(self) -> None:
        """Queue the signed case's HL7 result and deliver the queue in the background (status bar says how)."""
        if self.window.case is None or not self.window.case.info.signed:
            QMessageBox.information(self.window, "Send to LIS", "Only a signed-out case is sent to the LIS.")
            return
        try:
            self.window.lis.send_case(self.window.case, self.who, self.window.settings, user_data_dir())
        except (HL7Error, OSError) as error:
            self.window.show_banner(f"The result was not queued for the LIS: {error}")

    # --- exports -------------------------------------------------------------------------------------------
    def export(self, kind: str, path: str | Path, overwrite: bool = False) -> None:
        """Write the case as ``csv``, ``json`` or ``pdf``; refuses to replace a file unless ``overwrite``."""
        if self.window.case is None:
            raise ExportError("there is no case to export")
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or confirm replacing it")
        cells, differential, report = case_report(
            self.window.case,
            self.window.classes,
            self.window.settings.reference_ranges,
            self.window.review_threshold,
            self.window.settings.lab_categories,
        )
        if kind == "csv":
            write_csv(path, cells, self.window.classes, differential)
        elif kind == "json":
            write_json(path, report)
        elif kind == "pdf":
            write_pdf(
                path, self.window.case, differential, self.window.settings.lab_name, self.window.settings.lab_address
            )
        else:
            raise ValueError(kind)
        self.window.case.record_export(kind, path.name, self.who)

    def export_dialog(self, kind: str) -> None:
        if self.window.case is None:
            QMessageBox.information(self.window, "Export", "Open or create a case first.")
            return
        name = f"{self.window.case.info.sample_id or f'case-{self.window.case.id}'}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self.window, f"Export {kind.upper()}", name, f"{kind.upper()} (*.{kind})")
        if not path:
            return
        try:
            self.export(kind, path, overwrite=True)  # the save dialog already asked before replacing
        except (ExportError, OSError) as error:
            QMessageBox.warning(self.window, "Export failed", str(error))
            return
        self.window.statusBar().showMessage(f"Exported {path}", 5000)

    def amend_dialog(self) -> None:
        """Case › Amend signed report: a new, open version of the signed case (the original is kept and printed
        as superseded); correct it, then sign it out like any case."""
        if self.window.case is None or not self.window.case.info.signed:
            QMessageBox.information(
                self.window, "Amend", "Only a signed-out case is amended; an open case is changed directly."
            )
            return
        reason, ok = QInputDialog.getText(
            self.window, "Amend signed report", "Why is the report amended? (printed on it)"
        )
        if ok and reason.strip():
            self.amend(reason)

    def amend(self, reason: str) -> Case:
        amendment = self.window.store.amend(self.window.case.id, reason, self.who)
        self.set_case(amendment)
        self.window.show_banner(f"Amendment of case {amendment.info.amends}: correct the cells, then sign it out.")
        return amendment

    def add_account_dialog(self) -> None:
        """Case › New signing account: each person who signs out gets their own account."""
        dialog = SignatureDialog(self.window.accounts, self.window, create=True)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.user is not None:
            self.window.statusBar().showMessage(f"Signing account {dialog.user.signature} created", 5000)

    def show_audit(self) -> None:
        if self.window.case is None:
            return

        self.audit_dialog = AuditDialog(
            self.window.case.audit(), self.window.case.info.sample_id or f"case {self.window.case.id}", self.window
        )
        self.audit_dialog.open()
