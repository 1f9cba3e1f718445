"""The window's part that sends signed cases to the LIS: queues the message (lis.send), delivers the queue on a
worker thread, and keeps a status-bar label that says what is waiting and why (red while anything is queued)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import QLabel

from wbc_desktop.core.case import Case
from wbc_desktop.core.settings import LabSettings
from wbc_desktop.gui import style
from wbc_desktop.gui.worker import TaskSignals
from wbc_desktop.lis.outbox import Destination, Outbox, Queued
from wbc_desktop.lis.send import queue_case


class _DeliveryTask(QRunnable):
    """One pass over the outbox (network and disk: never on the GUI thread)."""

    def __init__(self, outbox: Outbox, destination: Destination):
        super().__init__()
        self.outbox, self.destination, self.signals = outbox, destination, TaskSignals()

    def run(self) -> None:
        delivered, waiting = self.outbox.deliver(self.destination)
        self.signals.returned.emit((delivered, waiting))  # control IDs delivered, [Queued] still waiting


def destination_of(settings: LabSettings) -> Destination:
    return Destination(Path(settings.lis_folder) if settings.lis_folder else None, settings.lis_host, settings.lis_port)


class LisSender(QObject):
    """Queue → deliver → say so. ``finished`` is emitted after every delivery pass."""

    finished = Signal(list, list)

    def __init__(self, root: Path, pool: QThreadPool, parent=None):
        super().__init__(parent)
        self.outbox = Outbox(root)
        self.pool = pool
        self.status = QLabel("")
        self.busy = False
        self._tasks: list[_DeliveryTask] = []
        self.show_waiting(self.outbox.pending())

    def send_case(self, case: Case, who: str, settings: LabSettings, codes_dir: Path) -> str:
        """Queue a signed case's message (HL7Error if it cannot be built), then deliver the queue."""
        control_id = queue_case(case, self.outbox, who, settings.lab_name, codes_dir)
        self.deliver(settings)
        return control_id

    def deliver(self, settings: LabSettings) -> None:
        if self.busy:  # the running pass picks up what was just queued on the next retry
            return
        self.busy = True
        self.status.setText("LIS: sending…")
        task = _DeliveryTask(self.outbox, destination_of(settings))
        task.signals.returned.connect(self._delivered)
        self._tasks.append(task)  # keep the signals object alive until it has reported
        self.pool.start(task)

    def _delivered(self, outcome: tuple[list, list]) -> None:
        delivered, waiting = outcome
        self.busy = False
        self._tasks = [task for task in self._tasks if task.signals is not self.sender()]
        self.show_waiting(waiting, delivered)
        self.finished.emit(delivered, waiting)

    def show_waiting(self, waiting: list[Queued], delivered: list[str] | None = None) -> None:
        if waiting:
            reason = next((item.error for item in waiting if item.error), "not sent yet")
            self.status.setText(f"LIS: {len(waiting)} message(s) waiting ({reason}) · File › Retry sending to LIS")
            self.status.setStyleSheet(style.ALARM_TEXT)
        else:
            self.status.setText(f"LIS: {len(delivered)} result(s) sent" if delivered else "")
            self.status.setStyleSheet("")
