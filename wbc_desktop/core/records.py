"""The records a case is made of: a cell with the model's call and the person's label, an audit entry, the case's
header; and how paths and times are stored."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wbc_desktop.core.export import ExportCell
from wbc_desktop.core.review import review_reason
from wbc_desktop.core.status import Status

EXCLUDE = None  # the label of an excluded cell (artifact, smudge, not a WBC)


class CaseLockedError(Exception):
    """The case was signed out; it can be read and exported but not changed."""


def path_to_db(path: str) -> str | bytes:
    """File names that are not valid UTF-8 (possible on Linux) are stored as raw bytes, losslessly."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape")
    return path


def path_from_db(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Cell:
    id: int
    path: str
    predicted: str
    probabilities: dict[str, float]
    label: str | None
    status: str
    source: str | None = None
    box: list[int] | None = None
    foreign: bool = False  # the stain-robust model made the call: the cell looked unlike the training data

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values()) if self.probabilities else 0.0

    @property
    def excluded(self) -> bool:
        return self.status == Status.EXCLUDED

    def needs_review(self, threshold: float) -> bool:
        """A model call that no person has looked at yet and the review rule (core.review) does not accept:
        below the confidence threshold, or with probabilities that are not numbers."""
        return (
            self.status == Status.AUTO
            and review_reason(self.probabilities.values(), threshold, self.foreign) is not None
        )

    def to_export(self, threshold: float | None = None) -> ExportCell:
        """The cell as exported; with the review ``threshold`` a model call no person verified says whether it
        needs review (and why), as the window's bin and the CLI do."""
        review = None
        if self.status == Status.AUTO and threshold is not None:
            review = review_reason(self.probabilities.values(), threshold, self.foreign)
        return ExportCell(
            self.path,
            self.label,
            self.probabilities,
            self.status,
            predicted=self.predicted,
            source=self.source,
            box=self.box,
            review=review,
        )


@dataclass
class AuditEntry:
    at: str
    who: str
    action: str
    cell_id: int | None
    from_label: str | None
    to_label: str | None


@dataclass
class CaseInfo:
    id: int
    sample_id: str
    operator: str
    created: str
    wbc_count: float | None
    target: int
    model: dict
    signed_by: str | None
    signed_at: str | None
    cell_count: int = 0
    incomplete_reason: str | None = None  # signed out although the check listed problems: the person's reason
    signed_context: dict | None = None  # classes, reference ranges and review threshold the signed report used
    content_hash: str | None = None  # the seal of the signed content (core.integrity)
    signer_id: str | None = None  # the signing account's unique ID (wbc_desktop.accounts)
    signature_meaning: str | None = None  # what the signature means, e.g. "reviewed and released"
    amends: int | None = None  # the signed case this one corrects (an amended report)
    amend_reason: str | None = None
    superseded_by: int | None = None  # the latest amendment of this case, if any: this report is superseded
    collected: str | None = None  # when the sample was taken (ISO date/time, as the technician entered it)

    @property
    def signed(self) -> bool:
        return self.signed_at is not None


def collection_time(text: str) -> str:
    """A collection date/time as typed ("2026-12-03 08:30", "2026-12-03T08:30", "2026-12-03"), normalised to
    ISO minutes; ValueError with a readable message for anything else or a time in the future."""
    text = text.strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"collection time {text!r}: write it as YYYY-MM-DD HH:MM") from None
    if moment.replace(tzinfo=None) > dt.datetime.now() + dt.timedelta(minutes=5):
        raise ValueError(f"collection time {text!r} is in the future")
    return moment.isoformat(timespec="minutes" if len(text) > 10 else "auto")[: 16 if len(text) > 10 else 10]
