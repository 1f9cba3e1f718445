"""The LIS queue: every message of a signed case is first written to ``outbox/`` (atomically), then delivered
to the drop folder and/or over MLLP; it moves to ``sent/`` only once every configured destination took it (the
MLLP receiver with an accepting ACK). Whatever failed stays queued with its reason, shown in the window and
retried."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wbc_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from wbc_desktop.lis import mllp
from wbc_desktop.lis.hl7 import HL7Error, check_ack


@dataclass(frozen=True)
class Destination:
    """Where results go: a folder the LIS picks files up from, and/or an MLLP host and port."""

    folder: Path | None = None
    host: str = ""
    port: int = 0
    timeout: float = 10.0

    @property
    def configured(self) -> bool:
        return self.folder is not None or bool(self.host and self.port)


@dataclass(frozen=True)
class Queued:
    name: str  # file name in the outbox: the message's control ID
    error: str  # why the last delivery failed ("" if never tried)


class Outbox:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.pending_dir = self.root / "outbox"
        self.sent_dir = self.root / "sent"

    def put(self, control_id: str, message: str) -> Path:
        """Queue a message (written atomically: a crash leaves it whole or absent)."""
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        path = self.pending_dir / f"{control_id}.hl7"
        atomic_write_bytes(path, message.encode("utf-8"))  # as on the wire: segments end in CR
        return path

    def pending(self) -> list[Queued]:
        if not self.pending_dir.is_dir():
            return []
        queued = []
        for path in sorted(self.pending_dir.glob("*.hl7")):
            error_file = path.with_suffix(".error")
            queued.append(Queued(path.stem, error_file.read_text(encoding="utf-8") if error_file.exists() else ""))
        return queued

    def deliver(self, destination: Destination) -> tuple[list[str], list[Queued]]:
        """Try every queued message; the control IDs delivered, and what is still queued (with its reason)."""
        delivered = []
        for item in self.pending():
            path = self.pending_dir / f"{item.name}.hl7"
            message = path.read_bytes().decode("utf-8")
            try:
                self._deliver_one(item.name, message, destination)
            except (OSError, mllp.MLLPError, HL7Error) as error:
                atomic_write_text(path.with_suffix(".error"), str(error))
                continue
            self.sent_dir.mkdir(parents=True, exist_ok=True)
            path.replace(self.sent_dir / path.name)
            path.with_suffix(".error").unlink(missing_ok=True)
            delivered.append(item.name)
        return delivered, self.pending()

    @staticmethod
    def _deliver_one(control_id: str, message: str, destination: Destination) -> None:
        if not destination.configured:
            raise HL7Error("no LIS is set up (Settings: a drop folder or an MLLP host and port)")
        if destination.folder is not None:
            if not destination.folder.is_dir():
                raise HL7Error(f"the LIS drop folder {destination.folder} does not exist or cannot be reached")
            atomic_write_bytes(destination.folder / f"{control_id}.hl7", message.encode("utf-8"))
        if destination.host and destination.port:
            answer = mllp.send(destination.host, destination.port, message, destination.timeout)
            check_ack(answer, control_id)
