"""Background work for the window: model loading and discovery + classification, off the GUI thread.

Each task is a QRunnable on the global QThreadPool that reports through signals (delivered queued to the GUI
thread). Classification drives the same ``classify_iter`` generator as the CLI; the cancel flag is checked at
every yield, so Cancel answers within one small batch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QRunnable, Signal
from PySide6.QtGui import QImage

from wbc_desktop.core.images import discover, load_image
from wbc_desktop.core.pipeline import classify_iter

THUMBNAIL_SIZE = 128  # the gallery shows 64-128 px (a slider); the cells table 56 px
# Threads preparing cells ahead of the model during a batch: one core fewer than the machine has, so the window's
# own thread keeps a core (with the batch thread running the model, a 2-core PC still overlaps the two).
GUI_PREPARE_WORKERS = max(1, (os.cpu_count() or 1) - 1)


def thumbnail_image(array: np.ndarray, size: int = THUMBNAIL_SIZE) -> QImage:
    """A small QImage (safe to build off the GUI thread, unlike QPixmap)."""
    image = Image.fromarray(array)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    data = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    height, width, _ = data.shape
    return QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class TaskSignals(QObject):
    """One vocabulary for every background task (superqt's worker words): ``started`` with what it found to do,
    ``progress`` and ``yielded`` while it runs, ``warned`` for what a person should know although it went on,
    then exactly one of ``returned`` (its result), ``errored`` (a message for the person) or ``cancelled``."""

    started = Signal(object)
    progress = Signal(str, int, int)  # stage, done, total
    yielded = Signal(object)
    warned = Signal(str)
    returned = Signal(object)
    errored = Signal(str)
    cancelled = Signal()


class ModelLoadTask(QRunnable):
    """Load (and verify) the model once, in the background, so the window shows at once; with a lab profile
    when one is chosen."""

    def __init__(self, model_dir: Path | None, profile_dir: Path | None = None):
        super().__init__()
        self.model_dir = model_dir
        self.profile_dir = profile_dir
        self.signals = TaskSignals()

    def run(self) -> None:
        from wbc_desktop.core.lab_profile import ProfileError
        from wbc_desktop.inference.lab_profile import load_with_profile
        from wbc_desktop.inference.litert import load_classifier
        from wbc_desktop.inference.manifest import ModelError

        # One core stays free for the GUI thread: the window must keep repainting during a batch.
        threads = max(1, (os.cpu_count() or 2) - 1)
        try:
            base = load_classifier(self.model_dir, num_threads=threads)
        except ModelError as error:
            self.signals.errored.emit(str(error))
            return
        except Exception as error:  # anything else is still a refusal with a message
            self.signals.errored.emit(f"the model could not be loaded: {error}")
            return
        try:
            classifier = load_with_profile(base, self.profile_dir)
        except ProfileError as error:
            # e.g. a profile made for the previous model (five classes): the bundled model makes the calls and
            # the window says why, rather than classifying nothing until someone finds the setting
            self.signals.warned.emit(str(error))
            classifier = base
        except Exception as error:  # anything else is still a refusal with a message
            self.signals.errored.emit(f"the model could not be loaded: {error}")
            return
        self.signals.returned.emit(classifier)


def emit_unless_closed(signal, *args) -> None:
    """Emit from a pool thread; if the window was closed meanwhile nobody is left to tell (Qt raises then)."""
    with contextlib.suppress(RuntimeError):
        signal.emit(*args)


class LibraryTask(QRunnable):
    """Add a signed-out case's verified cells to the lab's library (copies images: off the GUI thread)."""

    def __init__(self, folder: Path, case):
        super().__init__()
        self.folder, self.case = folder, case
        self.signals = TaskSignals()  # returned: (cells added, cells in the library, problems)

    def run(self) -> None:
        from wbc_desktop.core.cell_library import CellLibrary

        try:
            library = CellLibrary(self.folder)
            try:
                added, problems = library.add_signed_case(self.case)
                total = len(library)
            finally:
                library.close()
        except Exception as error:  # a full disk or a locked index: the sign-out stands, the library waits
            emit_unless_closed(
                self.signals.errored, f"the verified cells could not be added to the lab's library: {error}"
            )
            return
        emit_unless_closed(self.signals.returned, (added, total, problems))


class AdaptTask(QRunnable):
    """Fit a lab profile on verified cells off the GUI thread; a fine-tune runs in a child process."""

    def __init__(
        self,
        base,
        paths: list[Path],
        labels: list[str],
        name: str,
        out: Path,
        fine_tune: bool = False,
        fine_tune_steps: int | None = None,
    ):
        super().__init__()
        self.base, self.paths, self.labels, self.name, self.out = base, paths, labels, name, out
        self.fine_tune, self.fine_tune_steps = fine_tune, fine_tune_steps
        self.signals = TaskSignals()  # returned: the Profile
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop at the next image, or end the fine-tuning process at once; nothing is written."""
        self._cancel.set()

    def _progress(self, stage: str, done: int, total: int) -> None:
        from wbc_desktop.core.lab_profile import AdaptCancelled

        if self._cancel.is_set():
            raise AdaptCancelled
        emit_unless_closed(self.signals.progress, stage, done, total)

    def run(self) -> None:
        from wbc_desktop.core.lab_profile import AdaptCancelled, ProfileError, load_profile
        from wbc_desktop.inference.lab_profile import build_profile

        existed = self.out.exists()
        try:
            if self.fine_tune:
                self._fine_tune_in_child()
                profile = load_profile(self.out)
            else:
                profile = build_profile(
                    self.base,
                    self.paths,
                    self.labels,
                    self.name,
                    on_progress=lambda done, total: self._progress("reading features", done, total),
                )
                self._progress("saving", 1, 1)  # the last moment a cancel keeps the folder free of a profile
                profile.save(self.out)
        except AdaptCancelled:
            if not existed:  # a fine-tune may have written its model already: leave no half profile behind
                shutil.rmtree(self.out, ignore_errors=True)
            emit_unless_closed(self.signals.cancelled)
            return
        except (ProfileError, OSError) as error:
            emit_unless_closed(self.signals.errored, str(error))
            return
        except Exception as error:  # an unforeseen failure still ends the task with a message, never silently
            if not existed:
                shutil.rmtree(self.out, ignore_errors=True)
            emit_unless_closed(self.signals.errored, f"the lab profile could not be fitted: {error}")
            return
        emit_unless_closed(self.signals.returned, profile)

    def _fine_tune_in_child(self) -> None:
        """Run :func:`wbc_desktop.training.finetune.fine_tune_job` in a spawned process, relaying its progress;
        a cancel terminates it."""
        import multiprocessing

        from wbc_desktop.core.lab_profile import AdaptCancelled, ProfileError

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no Qt, no LiteRT state inherited
        messages = context.Queue()
        job = context.Process(
            target=_run_fine_tune_job,
            args=(
                str(self.base.model_dir),
                [str(p) for p in self.paths],
                list(self.labels),
                self.name,
                str(self.out),
                self.fine_tune_steps,
                messages,
            ),
            daemon=True,
        )
        job.start()
        try:
            while True:
                if self._cancel.is_set():
                    raise AdaptCancelled
                try:
                    message = messages.get(timeout=0.1)
                except queue.Empty:
                    if not job.is_alive() and messages.empty():
                        raise ProfileError(f"fine-tuning stopped unexpectedly (exit code {job.exitcode})") from None
                    continue
                if message[0] == "progress":
                    self._progress(*message[1:])
                elif message[0] == "failed":
                    raise ProfileError(message[1])
                else:
                    return
        finally:
            if job.is_alive() and self._cancel.is_set():
                job.terminate()
            job.join(timeout=10)


def _run_fine_tune_job(*args) -> None:
    """Child-process entry point (importable by name, as spawn requires)."""
    from wbc_desktop.training.finetune import fine_tune_job

    fine_tune_job(*args)


@dataclass(frozen=True)
class Finished:
    """Last item on a task's queue."""

    cancelled: bool


class ClassifyTask(QRunnable):
    """Discover images under the dropped paths and classify them one batch at a time.

    Results go onto ``self.results`` (``(CellResult, QImage | None)``, then one :class:`Finished`); the window
    drains that queue on a timer with a time budget, so a fast model can never flood the GUI thread.
    """

    def __init__(
        self, inputs: list[str], classifier, batch_size: int = 8, mode: str = "auto", um_per_px: float | None = None
    ):
        super().__init__()
        self.mode = mode
        self.um_per_px = um_per_px
        self.inputs = inputs
        self.classifier = classifier
        self.batch_size = batch_size
        self.signals = TaskSignals()  # started: (number of images, [(path, message)] discovery problems)
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.total = 0
        self.started = time.monotonic()
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.done.set()

    def _run(self) -> None:
        found = discover(self.inputs)
        self.total = len(found.images)
        self.signals.started.emit((self.total, [(str(p), m) for p, m in found.errors]))
        thumbnails: dict[Path, QImage] = {}

        def load_with_thumbnail(path: Path) -> np.ndarray:
            array = load_image(path)
            thumbnails[path] = thumbnail_image(array)
            return array

        self.started = time.monotonic()
        try:
            for result in classify_iter(
                found.images,
                self.classifier,
                batch_size=self.batch_size,
                loader=load_with_thumbnail,
                mode=self.mode,
                workers=GUI_PREPARE_WORKERS,
                um_per_px=self.um_per_px,
            ):
                if self._cancel.is_set():
                    break
                if result.crop is not None:  # a cell found in a field: its own thumbnail, then drop the pixels
                    thumbnail = thumbnail_image(result.crop)
                    result.crop = None
                    thumbnails.pop(result.source, None)  # the field's own thumbnail is not shown
                else:
                    thumbnail = thumbnails.pop(result.path, None)
                self.results.put((result, thumbnail))
        finally:
            self.results.put(Finished(self._cancel.is_set()))
