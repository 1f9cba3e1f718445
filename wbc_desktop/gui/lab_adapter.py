"""Other labs in the main window (a part it contains): the out-of-domain banner and Adapt to my lab."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressDialog

from wbc_desktop.core.cell_library import CellLibrary
from wbc_desktop.core.domain import BATCH_SIZE, OUT_OF_DOMAIN_MESSAGE, batch_flagged
from wbc_desktop.core.lab_model import LabModelVersion, next_name, refit_due, replaces, versions
from wbc_desktop.core.status import Status
from wbc_desktop.gui.worker import AdaptTask, LibraryTask
from wbc_desktop.inference.lab_profile import profile_is_worse
from wbc_desktop.inference.manifest import KERAS_FILE
from wbc_desktop.paths import profiles_dir

MIN_CELLS_FOR_DOMAIN_WARNING = 5


def fine_tuning_available(base) -> bool:
    """TensorFlow is installed (found, not imported: that takes seconds) and the model store has its Keras file."""
    model_dir = base.model_dir
    return (
        model_dir is not None
        and (Path(model_dir) / KERAS_FILE).exists()
        and importlib.util.find_spec("tensorflow") is not None
    )


class LabAdapter(QObject):
    """The window's part for other labs: the out-of-domain banner, Adapt to my lab (its task, progress dialog
    and outcome), and the lab model that learns from every signed case: the case's verified cells join the lab's
    library, and when enough new ones exist a new version is fitted in the background and put in use if it does
    at least as well (core/lab_model.py). It owns that state; it reads the window's classifier, cases and settings."""

    lab_model_done = Signal(str)  # what the technician was told when a lab model fit ended (used or not)
    library_done = Signal(int)  # cells in the library after a signed case was added

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.adapt_dialog: QProgressDialog | None = None  # shown while a lab profile is being fitted
        self.task: AdaptTask | None = None  # the AdaptTask running or last run
        self.library_task: LibraryTask | None = None
        self.refitting: str | None = None  # the lab model version being fitted in the background
        self.fine_tune_steps: int | None = None  # None: the fine-tuning's own default (tests use a few)
        self.model_label = QLabel()  # the lab model in use, always in view (status bar)
        window.statusBar().addPermanentWidget(self.model_label)
        self.show_lab_model()

    def cancel(self) -> None:
        """On closing: a fine-tune stops at its next step; nothing half-written is kept."""
        if self.task is not None:
            self.task.cancel()

    def check_domain(self) -> None:
        """Show the other-lab banner once enough cells of this case look unlike the training data."""
        domain = self.window.classifier.domain
        if domain is None or len(self.window.domain_scores) < MIN_CELLS_FOR_DOMAIN_WARNING:
            return
        no_profile = self.window.classifier.profile is None
        if no_profile and batch_flagged(self.window.domain_scores[-BATCH_SIZE:], domain.batch_threshold):
            robust = (
                " Cells that look foreign are classified by the stain-robust model."
                if self.window.classifier.has_robust_model
                else ""
            )
            self.window.show_banner(
                f"⚠ {OUT_OF_DOMAIN_MESSAGE[0].upper()}{OUT_OF_DOMAIN_MESSAGE[1:]} (Settings › Adapt to my lab).{robust}"
            )

    # --- the lab model: learning from every signed case -------------------------------------------------------

    def library_folder(self) -> Path:
        """The verified-cell library, beside the case store."""
        return self.window.store.path.parent / "library"

    def version_in_use(self, found: list[LabModelVersion] | None = None) -> LabModelVersion | None:
        """The lab model version the settings name, among ``found`` (read from the profiles folder if not given)."""
        found = versions(profiles_dir()) if found is None else found
        return next((v for v in found if v.name == self.window.settings.profile), None)

    def use_profile(self, name: str) -> None:
        """Put the lab profile ``name`` in use ("" for none: the bundled model), as Preferences would."""
        settings = self.window.settings.__class__.from_dict(self.window.settings.to_dict())
        settings.profile = name
        self.window.apply_settings(settings)

    def show_lab_model(self) -> None:
        in_use = self.version_in_use()
        self.model_label.setText(in_use.summary() if in_use else "")
        self.model_label.setToolTip("Roll back: Settings › Roll back the lab model, or choose a version in Preferences")

    def learn_from_signed_case(self) -> None:
        """After a sign-out: the case's verified cells join the library (background), then a refit if due."""
        case = self.window.case
        if case is None or not case.info.signed:
            return
        task = LibraryTask(self.library_folder(), case)
        task.signals.returned.connect(self._library_grew)
        task.signals.errored.connect(self._lab_model_failed)
        self.library_task = task
        self.window.pool.start(task)

    def _library_grew(self, outcome) -> None:
        added, total, problems = outcome
        message = f"{added} verified cells added to the lab's library ({total} in all)"
        if problems:
            message += f"; {len(problems)} could not be read: {problems[0]}"
        self.window.statusBar().showMessage(message, 15_000)
        self.library_done.emit(total)
        self.refit_if_due()

    def refit_if_due(self) -> bool:
        """Fit the next lab model version in the background when the library has grown enough; True if started."""
        classifier = self.window.classifier
        base = classifier.base if classifier is not None else None
        if base is None or base.model_dir is None or self.refitting is not None:
            return False  # no model on disk to refit from (a test's stand-in), or a fit is running already
        library = CellLibrary(self.library_folder())
        try:
            cells = library.cells(classes=base.classes)
        finally:
            library.close()
        found = versions(profiles_dir())
        if not refit_due(len(cells), self.version_in_use(found), found[-1] if found else None):
            return False
        name = next_name(profiles_dir())
        fine_tune = fine_tuning_available(base)
        task = AdaptTask(
            base,
            [cell.path for cell in cells],
            [cell.label for cell in cells],
            name,
            profiles_dir() / name,
            fine_tune=fine_tune,
            fine_tune_steps=self.fine_tune_steps,
        )
        task.signals.returned.connect(self._lab_model_fitted)
        task.signals.errored.connect(self._lab_model_failed)
        task.signals.cancelled.connect(lambda: self._lab_model_failed("the lab model's fit was cancelled"))
        self.task, self.refitting = task, name
        how = (
            "fine-tuning the model in the background"
            if fine_tune
            else "a correction head (fine-tuning needs the 'train' extra and the model's Keras file)"
        )
        number = name.removeprefix("lab-v")
        self.window.statusBar().showMessage(f"Fitting lab model v{number} on {len(cells)} verified cells: {how}…")
        self.window.pool.start(task)
        return True

    def _lab_model_fitted(self, profile) -> None:
        self.refitting = None
        found = versions(profiles_dir())
        candidate = next((v for v in found if v.name == profile.name), None)
        if candidate is None:
            self._lab_model_failed(f"the new lab model {profile.name} cannot be read back")
            return
        use, why = replaces(candidate, self.version_in_use(found))
        message = f"{candidate.summary()}: " + ("now in use" if use else f"not in use, {why}")
        if use:
            self.use_profile(candidate.name)  # its label follows: apply_settings shows the version in use
        else:
            self.show_lab_model()
        self.window.statusBar().showMessage(message, 60_000)
        self.lab_model_done.emit(message)

    def _lab_model_failed(self, message: str) -> None:
        self.refitting = None
        self.window.show_banner(f"Lab model: {message}. Signed cases are kept; it is tried again after the next.")
        self.lab_model_done.emit(message)

    def roll_back(self) -> None:
        """Use the lab model version before the one in use (or none: the bundled model)."""
        found = versions(profiles_dir())
        in_use = self.version_in_use(found)
        if in_use is None:
            QMessageBox.information(self.window, "Roll back the lab model", "No lab model is in use.")
            return
        older = [v for v in found if v.number < in_use.number]
        self.use_profile(older[-1].name if older else "")  # the status bar's label follows (apply_settings)
        now = older[-1].summary() if older else "the bundled model, no lab model"
        self.window.statusBar().showMessage(f"Rolled back from lab model v{in_use.number}; in use: {now}", 30_000)

    # --- Adapt to my lab (by hand) -------------------------------------------------------------------------------

    def verified_cells(self) -> tuple[list[Path], list[str]]:
        """Single-cell images a person confirmed or reclassified, in every case of the store, of the classes the
        model has (a cell put in a class beyond the model's cannot teach it)."""
        model_classes = (
            set(self.window.classifier.classes) if self.window.classifier is not None else set(self.window.classes)
        )
        paths, labels = [], []
        for info in self.window.store.case_infos():
            for cell in self.window.store.open_case(info.id).cells:
                verified = cell.status in (Status.REVIEWED, Status.RECLASSIFIED) and cell.label in model_classes
                if verified and not cell.source:
                    paths.append(Path(cell.path))
                    labels.append(cell.label)
        return paths, labels

    def adapt_to_lab(self) -> None:
        """Fit a lab profile on the verified cells (background), then use it."""
        base = self.window.classifier.base
        if base is None:
            return
        paths, labels = self.verified_cells()
        if len(paths) < 20:
            QMessageBox.information(
                self.window,
                "Adapt to my lab",
                f"{len(paths)} verified cells so far. Review at least 20 cells of your lab (confirm with Enter or "
                "reclassify with 1–5), ideally 50 or more covering every class, then try again.",
            )
            return
        method = self.choose_adaptation(base)
        if method is None:
            return
        name = f"lab-{dt.datetime.now():%Y%m%d-%H%M}"
        task = AdaptTask(
            base,
            paths,
            labels,
            name,
            profiles_dir() / name,
            fine_tune=method == "finetune",
            fine_tune_steps=self.fine_tune_steps,
        )
        how = "fine-tuning the model, about 2 minutes" if method == "finetune" else "a few seconds"
        dialog = QProgressDialog(
            f"Adapting to your lab on {len(paths)} verified cells ({how})…", "Cancel", 0, 0, self.window
        )
        dialog.setWindowTitle("Adapt to my lab")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(task.cancel)
        task.signals.progress.connect(self._adapt_progress)
        task.signals.returned.connect(self.adapted)
        task.signals.errored.connect(self._adapt_failed)
        task.signals.cancelled.connect(self._adapt_cancelled)
        self.task, self.adapt_dialog = task, dialog
        self.window.statusBar().showMessage(f"Adapting to your lab on {len(paths)} verified cells ({how})…")
        dialog.show()
        self.window.pool.start(task)

    def _adapt_progress(self, stage: str, done: int, total: int) -> None:
        if self.adapt_dialog is not None:
            self.adapt_dialog.setLabelText(f"Adapt to my lab: {stage} ({done}/{total})")
            self.adapt_dialog.setMaximum(total)
            self.adapt_dialog.setValue(done)

    def _close_adapt_dialog(self) -> None:
        if self.adapt_dialog is not None:
            self.adapt_dialog.close()
            self.adapt_dialog = None

    def _adapt_failed(self, message: str) -> None:
        self._close_adapt_dialog()
        QMessageBox.warning(self.window, "Adapt to my lab", message)

    def _adapt_cancelled(self) -> None:
        self._close_adapt_dialog()
        self.window.statusBar().showMessage("Adapting to your lab was cancelled; nothing was saved.", 10_000)

    def choose_adaptation(self, base) -> str | None:
        """The technician's choice: "finetune", "correction", or None (cancelled). Fine-tuning needs TensorFlow
        (the 'train' extra) and the model's Keras file; without them the correction is the only way: no question."""
        if not fine_tuning_available(base):
            return "correction"
        box = QMessageBox(self.window)
        box.setWindowTitle("Adapt to my lab")
        box.setText(
            "Fine-tuning the whole model on your verified cells is the most accurate on another lab's images "
            "and takes about 2 minutes. A quick correction of the model's calls takes seconds."
        )
        tune = box.addButton("Fine-tune the model", QMessageBox.ButtonRole.AcceptRole)
        quick = box.addButton("Quick correction", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(tune)
        box.exec()
        return {tune: "finetune", quick: "correction"}.get(box.clickedButton())

    def adapted(self, profile) -> None:
        self._close_adapt_dialog()
        validation = profile.validation
        accuracy = f"{validation['accuracy']:.1%}" if "accuracy" in validation else "not measured (too few cells)"
        fitted = (
            f"Lab profile “{profile.name}” fitted on {profile.cells} verified cells. Accuracy on the "
            f"{validation.get('cells_held_back', 0)} cells held back: {accuracy}"
        )
        if validation.get("bundled_accuracy") is not None:
            fitted += f" (the model without a profile: {validation['bundled_accuracy']:.1%} on the same cells)"
        if profile_is_worse(validation):
            QMessageBox.warning(
                self.window,
                "Adapt to my lab",
                f"{fitted}. The profile does worse than the model without one on your cells, so it is saved but "
                "not in use (Settings › Preferences). Verify more cells, or fine-tune the model if offered.",
            )
            return
        QMessageBox.information(
            self.window,
            "Adapt to my lab",
            f"{fitted}. It is now in use; choose another in Settings › Preferences.",
        )
        self.use_profile(profile.name)
