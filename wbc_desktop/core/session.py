"""What a window works on, typed in one place and free of Qt: the lab's settings, the open case, the cell that keys
act on, and the model's threshold; who is working and the review threshold follow from them."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from wbc_desktop.core.case import Case
from wbc_desktop.core.settings import LabSettings

DEFAULT_MODEL_THRESHOLD = 0.9  # until a model is loaded (its manifest has the calibrated one)


@dataclass
class Session:
    settings: LabSettings
    case: Case | None = None
    current_cell_id: int | None = None  # the one cell keys act on, highlighted wherever it is shown
    model_threshold: float = DEFAULT_MODEL_THRESHOLD

    @property
    def review_threshold(self) -> float:
        """Below it a model call waits in Needs review: the lab's own, else the model's calibrated one."""
        return self.settings.effective_threshold(self.model_threshold)

    @property
    def who(self) -> str:
        """The person the audit trail names for a change: the case's operator, else the lab's, else the login."""
        return (self.case.info.operator if self.case else "") or self.settings.operator or getpass.getuser()
