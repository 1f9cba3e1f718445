"""A case: the cells of one sample, their labels, the audit trail, and sign-out. Every change is written to
SQLite and committed before the call returns, so nothing a technician did is lost when the app dies.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wbc_desktop.core.classes import CATEGORIES, outside_differential
from wbc_desktop.core.differential import Differential, summarize
from wbc_desktop.core.export import ExportCell, build_report
from wbc_desktop.core.integrity import canonical_json, content_hash
from wbc_desktop.core.records import (
    AuditEntry,
    CaseInfo,
    CaseLockedError,
    Cell,
    collection_time,
    now,
    path_to_db,
)
from wbc_desktop.core.signout import SignOutRefused, sign_out_check
from wbc_desktop.core.status import Status

if TYPE_CHECKING:  # core.store imports this module: the store type is only named here
    from wbc_desktop.core.store import CaseStore


@dataclass
class Case:
    """One sample's cells. Mutating methods persist first, then update memory, then return.

    Each change runs in its own write transaction that first asks the database whether the case is still open
    and reads the "from" values there, so a second window on the same store can neither change a case the first
    signed out nor record a stale label in the audit trail."""

    store: CaseStore
    info: CaseInfo
    cells: list[Cell] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    read_only: str | None = None  # why this window may not change the case (open in another window), if so
    # the lab's own categories this case filed cells into: label -> counts in the differential (as first used)
    category_kinds: dict[str, bool] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def locked(self) -> bool:
        return self.info.signed or self.read_only is not None

    def _check_open(self) -> None:
        if self.info.signed:
            raise CaseLockedError(f"case {self.info.sample_id or self.id} is signed out and cannot be changed")
        if self.read_only is not None:
            raise CaseLockedError(f"case {self.info.sample_id or self.id} is read-only here: {self.read_only}")

    @contextlib.contextmanager
    def _change(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction on an open case, checked in the database (another window may have signed it)."""
        self._check_open()
        with self.store.transaction(durable) as db:
            row = db.execute("SELECT signed_by, signed_at FROM cases WHERE id = ?", (self.id,)).fetchone()
            if row is None:
                raise CaseLockedError(f"case {self.id} no longer exists")
            if row[1] is not None:
                self.info.signed_by, self.info.signed_at = row
                raise CaseLockedError(
                    f"case {self.info.sample_id or self.id} was signed out by {row[0]} (in another window) "
                    "and cannot be changed"
                )
            yield db

    def _audit(
        self, cell_id: int | None, who: str, action: str, from_label: str | None, to_label: str | None, at: str = ""
    ) -> str:
        """One audit entry, chained (inside the caller's transaction, beside the change it records)."""
        return self.store.append_audit(self.id, cell_id, who, action, from_label, to_label, at)

    def _stored(self, cell_id: int) -> tuple[str | None, str]:
        """A cell's label and status as the database has them now (inside the caller's transaction)."""
        row = self.store.db.execute(
            "SELECT label, status FROM cells WHERE id = ? AND case_id = ?", (cell_id, self.id)
        ).fetchone()
        if row is None:
            raise KeyError(f"no cell {cell_id} in case {self.id}")
        return row[0], row[1]

    def cell(self, cell_id: int) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        raise KeyError(f"no cell {cell_id} in case {self.id}")

    def add_results(self, results: Iterable[tuple]) -> list[Cell]:
        """Add classified cells in one transaction (one disk sync).

        Each item is ``(path, label, probabilities)`` or, for a cell found in a field,
        ``(path, label, probabilities, source, box)``, optionally followed by whether the stain-robust model made
        the call (``foreign``: such a call waits for a person's review).
        """
        with self._change(durable=False):
            added = self._insert_cells(results)
        self.cells.extend(added)
        return added

    def add_drawn_cell(
        self, source: str, box: list[int], label: str, probabilities: dict[str, float], who: str, foreign: bool = False
    ) -> Cell:
        """A WBC the finder missed, boxed by a person: the cell and its audit entry in one durable transaction."""
        number = 1 + sum(1 for cell in self.cells if cell.source == source and "#drawn" in cell.path)
        with self._change():
            cell = self._insert_cells([(f"{source}#drawn{number}", label, probabilities, source, box, foreign)])[0]
            self._audit(cell.id, who, "add-box", None, label)
        self.cells.append(cell)
        return cell

    def _insert_cells(self, results: Iterable[tuple]) -> list[Cell]:
        """INSERT the cells (inside the caller's transaction)."""
        added = []
        for path, label, probabilities, *where in results:
            source, box, foreign = [*where, None, None, False][:3]
            cursor = self.store.db.execute(
                "INSERT INTO cells (case_id, path, source, box, predicted, probabilities, label, status, "
                "foreign_call) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.id,
                    path_to_db(path),
                    path_to_db(source) if source else None,
                    json.dumps(list(box)) if box else None,
                    label,
                    json.dumps(probabilities),
                    label,
                    Status.AUTO,
                    int(bool(foreign)),
                ),
            )
            added.append(
                Cell(
                    int(cursor.lastrowid),
                    path,
                    label,
                    dict(probabilities),
                    label,
                    Status.AUTO,
                    source,
                    box,
                    bool(foreign),
                )
            )
        return added

    def add_result(self, path: str, label: str, probabilities: dict[str, float]) -> Cell:
        return self.add_results([(path, label, probabilities)])[0]

    def add_errors(self, errors: Iterable[tuple[str, str]]) -> None:
        errors = list(errors)
        with self._change(durable=False):
            self.store.db.executemany(
                "INSERT INTO errors (case_id, path, message) VALUES (?, ?, ?)",
                [(self.id, path_to_db(p), m) for p, m in errors],
            )
        self.errors.extend(errors)

    def add_error(self, path: str, message: str) -> None:
        self.add_errors([(path, message)])

    def set_label(self, cell_id: int, label: str | None, who: str, counts: bool | None = None) -> Cell:
        """Reclassify a cell (``label=None`` excludes it); confirming the model's call marks it reviewed.
        ``counts``: for a lab's own category, whether it is a white cell; the case keeps the kind it was first
        filed with (``category_kinds``), whatever the settings say later."""
        cell = self.cell(cell_id)
        new_kind = label is not None and counts is not None and label not in self.category_kinds
        with self._change():
            if new_kind:
                self.store.db.execute(
                    "INSERT OR IGNORE INTO case_categories VALUES (?, ?, ?)", (self.id, label, int(bool(counts)))
                )
            previous, _ = self._stored(cell_id)
            if label is None:
                status, action = Status.EXCLUDED, "exclude"
            elif label == cell.predicted:
                status, action = Status.REVIEWED, "confirm" if previous == label else "reclassify"
            else:
                status, action = Status.RECLASSIFIED, "reclassify"
            self.store.db.execute("UPDATE cells SET label = ?, status = ? WHERE id = ?", (label, status, cell_id))
            self._audit(cell_id, who, action, previous, label)
        if new_kind:
            assert label is not None and counts is not None
            self.category_kinds[label] = bool(counts)
        cell.label, cell.status = label, status
        return cell

    def accept_page(self, cell_ids: Iterable[int], who: str) -> list[Cell]:
        """A person looked at these cells together (a gallery page of one class) and agrees with each call:
        verified as *accepted*, which the report counts apart from cells confirmed one by one."""
        cells = [self.cell(cell_id) for cell_id in cell_ids]
        with self._change():
            stored = {cell.id: self._stored(cell.id) for cell in cells}
            # as stored: a cell another window verified meanwhile is not accepted again (nor its label guessed)
            cells = [cell for cell in cells if stored[cell.id][1] == Status.AUTO and stored[cell.id][0] is not None]
            for cell in cells:
                self.store.db.execute("UPDATE cells SET status = ? WHERE id = ?", (Status.ACCEPTED, cell.id))
                self._audit(cell.id, who, "confirm page", stored[cell.id][0], stored[cell.id][0])
        for cell in cells:
            cell.label, cell.status = stored[cell.id][0], Status.ACCEPTED
        return cells

    def restore(self, cell_id: int, label: str | None, status: str, who: str, action: str = "undo") -> Cell:
        """Put a cell back to an earlier label and status (an undo: a model call can become unverified again);
        audited like any change."""
        cell = self.cell(cell_id)
        with self._change():
            previous, _ = self._stored(cell_id)
            self.store.db.execute("UPDATE cells SET label = ?, status = ? WHERE id = ?", (label, status, cell_id))
            self._audit(cell_id, who, f"{action} (back to {status})", previous, label)
        cell.label, cell.status = label, status
        return cell

    def confirm(self, cell_id: int, who: str) -> Cell:
        """The technician agrees with the cell's current label."""
        cell = self.cell(cell_id)
        if cell.excluded:
            return cell
        return self.set_label(cell_id, cell.label, who)

    def update_details(
        self,
        *,
        sample_id: str | None = None,
        operator: str | None = None,
        wbc_count: float | bool | None = False,
        target: int | None = None,
        collected: str | None = None,
        who: str = "",
    ) -> None:
        """Change the case's header fields (``wbc_count=None`` clears it; ``False`` leaves it). Each changed field
        is written alone and audited with its old value as stored (the sample ID is the patient link)."""
        wanted = {"sample_id": sample_id, "operator": operator, "target": target, "collected": collected}
        if wbc_count is not False:
            wanted["wbc_count"] = wbc_count
        wanted = {key: value for key, value in wanted.items() if value is not None or key == "wbc_count"}
        if wanted.get("collected"):
            wanted["collected"] = collection_time(wanted["collected"])
        if not wanted:
            return
        with self._change() as db:
            columns = ", ".join(wanted)
            stored = dict(
                zip(wanted, db.execute(f"SELECT {columns} FROM cases WHERE id = ?", (self.id,)).fetchone(), strict=True)
            )
            for key, value in wanted.items():
                if stored[key] == value:
                    continue
                db.execute(f"UPDATE cases SET {key} = ? WHERE id = ?", (value, self.id))
                self._audit(
                    None,
                    who or operator or self.info.operator or "unknown",
                    f"edit {key}",
                    _text(stored[key]),
                    _text(value),
                )
        for key, value in wanted.items():
            setattr(self.info, key, value)

    def set_model(self, model: dict) -> None:
        with self._change(durable=False) as db:
            db.execute("UPDATE cases SET model = ? WHERE id = ?", (json.dumps(model), self.id))
        self.info.model = dict(model)

    def sign_out(
        self,
        who: str,
        incomplete_reason: str | None = None,
        context: dict | None = None,
        signer_id: str | None = None,
        meaning: str | None = None,
    ) -> None:
        """Record who signed the differential, when and with what meaning; the case is locked from then on, and
        its content sealed with a hash (core.integrity) that the sign-out's audit entry carries.

        ``who`` is the signer's printed name and ``signer_id`` their account's unique ID (the window asks for the
        account's password first: wbc_desktop.accounts). A case with model calls no person verified, or counted
        short of its target, signs out only with a typed reason (an *incomplete* sign-out, printed on the
        report): :func:`core.signout.sign_out_check`. ``context`` (classes, reference ranges, review threshold)
        is stored with the signature, so the report of a signed case is the same whenever it is exported."""
        if not who.strip():
            raise ValueError("sign-out needs the name of the person signing")
        reason = (incomplete_reason or "").strip() or None
        at = now()
        context_text = canonical_json(context) if context else None
        with self._change() as db:
            # judged on the case as stored: another window may have changed cells since this one loaded them
            stored = self.store.open_case(self.id)
            self.cells, self.category_kinds = stored.cells, stored.category_kinds
            own = self.kinds_of_categories((context or {}).get("lab_categories"))
            if context is not None and self.category_kinds:  # sealed with the kinds this case filed cells with
                context = {**context, "lab_categories": own}
                context_text = canonical_json(context)
            check = sign_out_check(self, own)
            if not check.complete and reason is None:
                raise SignOutRefused(check)
            header, cells, errors = self.store.content(self.id)
            signed = {
                "signed_by": who,
                "signed_at": at,
                "incomplete_reason": reason,
                "signed_context": context_text,
                "signer_id": signer_id,
                "signature_meaning": meaning,
            }
            header.update(signed)
            seal = content_hash(header, cells, errors, self.store.head(self.id))
            db.execute(
                f"UPDATE cases SET {', '.join(f'{key} = ?' for key in signed)}, content_hash = ? WHERE id = ?",
                (*signed.values(), seal, self.id),
            )
            action = "sign-out" + (f" ({meaning})" if meaning else "") + (f" incomplete: {reason}" if reason else "")
            self._audit(None, f"{who} ({signer_id})" if signer_id else who, action, None, seal, at)
        info = self.info
        info.signed_by, info.signed_at, info.incomplete_reason = who, at, reason
        info.signer_id, info.signature_meaning = signer_id, meaning
        info.signed_context, info.content_hash = json.loads(context_text) if context_text else None, seal

    def record_export(self, kind: str, name: str, who: str) -> None:
        """An export of the case, audited (also of a signed case: the audit trail only grows)."""
        with self.store.transaction():
            self._audit(None, who, f"export {kind}", None, name)

    def audit(self) -> list[AuditEntry]:
        return [
            AuditEntry(*row)
            for row in self.store.db.execute(
                "SELECT at, who, action, cell_id, from_label, to_label FROM audit WHERE case_id = ? ORDER BY id",
                (self.id,),
            )
        ]

    def differential(
        self,
        classes: tuple[str, ...],
        reference_ranges: dict[str, tuple[float, float]] | None = None,
        lab_categories: Mapping[str, bool] | None = None,
        sealed: bool = False,
    ) -> Differential:
        """The differential over ``classes``; a category a person put a cell in (core.classes.CATEGORIES, or
        one of ``lab_categories``, the lab's own: label -> counts as a white cell) gets its row too. A label no
        list names (a category made in another installation) counts as a white cell, shown, never dropped."""
        own = self.kinds_of_categories(lab_categories, sealed)
        used = {cell.label for cell in self.cells if cell.label is not None}
        optional = (*CATEGORIES, *own, *sorted(used - {*classes, *CATEGORIES, *own}))
        return summarize(
            (cell.label for cell in self.cells),
            classes=classes,
            wbc_count=self.info.wbc_count,
            reference_ranges=reference_ranges,
            target=self.info.target,
            optional=optional,
            outside=outside_differential(own),
        )

    def kinds_of_categories(self, lab_categories: Mapping[str, bool] | None, sealed: bool = False) -> dict[str, bool]:
        """The lab's own categories (label -> counts as a white cell) as this case counts them: the case's own
        record (``category_kinds``) wins over the settings' ``lab_categories``; what a signed case was sealed
        with (``sealed``: ``lab_categories`` is the signed context's) wins over both."""
        settings = dict(lab_categories or {})
        return {**self.category_kinds, **settings} if sealed else {**settings, **self.category_kinds}

    def review_counts(self) -> dict[str, int]:
        """How many cells a person reviewed (confirmed), reclassified or excluded."""
        counts = {Status.REVIEWED: 0, Status.RECLASSIFIED: 0, Status.EXCLUDED: 0, Status.ACCEPTED: 0, Status.AUTO: 0}
        for cell in self.cells:
            counts[cell.status] = counts.get(cell.status, 0) + 1
        return counts

    def header(self) -> dict:
        info = self.info
        return {
            "id": info.id,
            "sample_id": info.sample_id,
            "operator": info.operator,
            "created": info.created,
            "collected": info.collected,
            "wbc_count": info.wbc_count,
            "target": info.target,
            "signed_by": info.signed_by,
            "signed_at": info.signed_at,
            "incomplete_reason": info.incomplete_reason,
            "review": self.review_counts(),
            "signer_id": info.signer_id,
            "signature_meaning": info.signature_meaning,
            "amends": info.amends,
            "amend_reason": info.amend_reason,
            "superseded_by": info.superseded_by,
            "content_hash": info.content_hash,
            "audit_head": self.store.head(self.id),
        }


def _text(value) -> str | None:
    return None if value is None else str(value)


def signed_context(
    classes: tuple[str, ...],
    reference_ranges,
    review_threshold: float | None,
    lab_categories: Mapping[str, bool] | None = None,
) -> dict:
    """What a report's flags and review marks depend on besides the cells: frozen with the signature (with the
    lab's own categories the case uses, so that a signed NRBC-like count stays outside the differential)."""
    context = {
        "classes": list(classes),
        "reference_ranges": {name: list(bounds) for name, bounds in (reference_ranges or {}).items()},
        "review_threshold": review_threshold,
    }
    if lab_categories:
        context["lab_categories"] = {label: bool(counts) for label, counts in lab_categories.items()}
    return context


def case_report(
    case: Case,
    classes: tuple[str, ...],
    reference_ranges=None,
    review_threshold: float | None = None,
    lab_categories: Mapping[str, bool] | None = None,
) -> tuple[list[ExportCell], Differential, dict]:
    """What the exports of a case contain: its cells (each saying whether it needs review, given the threshold),
    its differential and the JSON document. A signed case is reported with the classes, reference ranges,
    threshold and lab categories it was signed with, whatever is passed (the same report, flags included, on
    every export)."""
    frozen = case.info.signed_context
    if frozen:
        classes = tuple(frozen["classes"])
        reference_ranges = {name: tuple(bounds) for name, bounds in frozen["reference_ranges"].items()}
        review_threshold = frozen["review_threshold"]
        lab_categories = frozen.get("lab_categories") or {}
    cells = [cell.to_export(review_threshold) for cell in case.cells]
    differential = case.differential(classes, reference_ranges, lab_categories, sealed=bool(frozen))
    report = build_report(cells, differential, model=case.info.model, errors=case.errors, case=case.header())
    return cells, differential, report
