"""A case: the cells of one sample, their labels, the audit trail, and sign-out. Every change is written to
SQLite and committed before the call returns, so nothing a technician did is lost when the app dies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wbc_desktop.core.classes import CATEGORIES
from wbc_desktop.core.differential import Differential, summarize
from wbc_desktop.core.export import ExportCell
from wbc_desktop.core.review import review_reason
from wbc_desktop.core.signout import SignOutRefused, sign_out_check

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    sample_id TEXT NOT NULL DEFAULT '',
    operator TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    wbc_count REAL,
    target INTEGER NOT NULL DEFAULT 100,
    model TEXT NOT NULL DEFAULT '{}',
    signed_by TEXT,
    signed_at TEXT,
    incomplete_reason TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    path TEXT NOT NULL,
    source TEXT,
    box TEXT,
    predicted TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    label TEXT,
    status TEXT NOT NULL,
    foreign_call INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    cell_id INTEGER,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    from_label TEXT,
    to_label TEXT
);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_by_case ON cells(case_id);
CREATE INDEX IF NOT EXISTS audit_by_case ON audit(case_id);
"""

AUTO, REVIEWED, RECLASSIFIED, EXCLUDED = "auto", "reviewed", "reclassified", "excluded"
ACCEPTED = "accepted"  # verified with the rest of a gallery page (confirm page), not one by one
EXCLUDE = None  # the label of an excluded cell (artifact, smudge, not a WBC)


class CaseLockedError(Exception):
    """The case was signed out; it can be read and exported but not changed."""


def _path_to_db(path: str) -> str | bytes:
    """File names that are not valid UTF-8 (possible on Linux) are stored as raw bytes, losslessly."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape")
    return path


def _path_from_db(value: str | bytes) -> str:
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
        return self.status == EXCLUDED

    def needs_review(self, threshold: float) -> bool:
        """A model call that no person has looked at yet and the review rule (core.review) does not accept:
        below the confidence threshold, or with probabilities that are not numbers."""
        return self.status == AUTO and review_reason(self.probabilities.values(), threshold, self.foreign) is not None

    def to_export(self, threshold: float | None = None) -> ExportCell:
        """The cell as exported; with the review ``threshold`` a model call no person verified says whether it
        needs review (and why), as the window's bin and the CLI do."""
        review = None
        if self.status == AUTO and threshold is not None:
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

    @property
    def signed(self) -> bool:
        return self.signed_at is not None


class CaseStore:
    """The SQLite file holding every case. One connection; every write is its own committed transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a change is on disk when the call returns, also if the machine loses power right after.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Columns added since a store was created (CREATE TABLE IF NOT EXISTS keeps an old table as it is)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(cases)")}
        if "incomplete_reason" not in columns:
            self._write("ALTER TABLE cases ADD COLUMN incomplete_reason TEXT")
        if "foreign_call" not in {row[1] for row in self.db.execute("PRAGMA table_info(cells)")}:
            self._write("ALTER TABLE cells ADD COLUMN foreign_call INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT (ROLLBACK on error). Explicit, because in autocommit mode (isolation_level=None)
        ``with connection:`` issues no BEGIN and every statement would be a transaction of its own: a crash
        between a reclassification and its audit entry would then leave them disagreeing (the SIGKILL test
        caught exactly that).

        ``durable`` (a person's change) syncs to disk before returning. Machine results, which can be
        recomputed from the images, skip that sync: an fsync behind 500 freshly written files stalled the window
        0.3 s. Either kind survives the app being killed (the data is in the OS's hands at COMMIT)."""
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _write(self, sql: str, params: Iterable = (), durable: bool = True) -> sqlite3.Cursor:
        with self.transaction(durable):
            return self.db.execute(sql, tuple(params))

    def create_case(
        self, sample_id: str = "", operator: str = "", model: dict | None = None, target: int = 100
    ) -> Case:
        cursor = self._write(
            "INSERT INTO cases (sample_id, operator, created, target, model) VALUES (?, ?, ?, ?, ?)",
            (sample_id, operator, now(), target, json.dumps(model or {})),
            durable=False,  # an empty case holds nothing a person did yet
        )
        return self.open_case(int(cursor.lastrowid))

    def case_infos(self, unfinished_only: bool = False) -> list[CaseInfo]:
        """Cases newest first, with their number of cells."""
        rows = self.db.execute(
            "SELECT c.id, c.sample_id, c.operator, c.created, c.wbc_count, c.target, c.model, c.signed_by, "
            "c.signed_at, c.incomplete_reason, (SELECT COUNT(*) FROM cells WHERE case_id = c.id) "
            "FROM cases c ORDER BY c.id DESC"
        ).fetchall()
        infos = [_info(row[:10], row[10]) for row in rows]
        return [info for info in infos if not info.signed] if unfinished_only else infos

    def open_case(self, case_id: int) -> Case:
        row = self.db.execute(
            "SELECT id, sample_id, operator, created, wbc_count, target, model, signed_by, signed_at, "
            "incomplete_reason FROM cases WHERE id = ?",
            (case_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no case {case_id}")
        cells = [
            Cell(
                id=r[0],
                path=_path_from_db(r[1]),
                source=_path_from_db(r[2]) if r[2] is not None else None,
                box=json.loads(r[3]) if r[3] else None,
                predicted=r[4],
                probabilities=json.loads(r[5]),
                label=r[6],
                status=r[7],
                foreign=bool(r[8]),
            )
            for r in self.db.execute(
                "SELECT id, path, source, box, predicted, probabilities, label, status, foreign_call FROM cells "
                "WHERE case_id = ? ORDER BY id",
                (case_id,),
            )
        ]
        errors = [
            (_path_from_db(r[0]), r[1])
            for r in self.db.execute("SELECT path, message FROM errors WHERE case_id = ? ORDER BY id", (case_id,))
        ]
        return Case(self, _info(row), cells, errors)


def _info(row, cell_count: int = 0) -> CaseInfo:
    return CaseInfo(
        id=row[0],
        sample_id=row[1],
        operator=row[2],
        created=row[3],
        wbc_count=row[4],
        target=row[5],
        model=json.loads(row[6] or "{}"),
        signed_by=row[7],
        signed_at=row[8],
        cell_count=cell_count,
        incomplete_reason=row[9],
    )


@dataclass
class Case:
    """One sample's cells. Mutating methods persist first, then update memory, then return."""

    store: CaseStore
    info: CaseInfo
    cells: list[Cell] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def locked(self) -> bool:
        return self.info.signed

    def _check_open(self) -> None:
        if self.locked:
            raise CaseLockedError(f"case {self.info.sample_id or self.id} is signed out and cannot be changed")

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
        self._check_open()
        with self.store.transaction(durable=False):
            added = self._insert_cells(results)
        self.cells.extend(added)
        return added

    def add_drawn_cell(
        self, source: str, box: list[int], label: str, probabilities: dict[str, float], who: str, foreign: bool = False
    ) -> Cell:
        """A WBC the finder missed, boxed by a person: the cell and its audit entry in one durable transaction."""
        self._check_open()
        number = 1 + sum(1 for cell in self.cells if cell.source == source and "#drawn" in cell.path)
        with self.store.transaction():
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
                    _path_to_db(path),
                    _path_to_db(source) if source else None,
                    json.dumps(list(box)) if box else None,
                    label,
                    json.dumps(probabilities),
                    label,
                    AUTO,
                    int(bool(foreign)),
                ),
            )
            added.append(
                Cell(int(cursor.lastrowid), path, label, dict(probabilities), label, AUTO, source, box, bool(foreign))
            )
        return added

    def _audit(
        self, cell_id: int | None, who: str, action: str, from_label: str | None, to_label: str | None, at: str = ""
    ) -> None:
        """INSERT one audit entry (inside the caller's transaction, beside the change it records)."""
        self.store.db.execute(
            "INSERT INTO audit (case_id, cell_id, at, who, action, from_label, to_label) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.id, cell_id, at or now(), who, action, from_label, to_label),
        )

    def add_result(self, path: str, label: str, probabilities: dict[str, float]) -> Cell:
        return self.add_results([(path, label, probabilities)])[0]

    def add_errors(self, errors: Iterable[tuple[str, str]]) -> None:
        errors = list(errors)
        with self.store.transaction(durable=False):
            self.store.db.executemany(
                "INSERT INTO errors (case_id, path, message) VALUES (?, ?, ?)",
                [(self.id, _path_to_db(p), m) for p, m in errors],
            )
        self.errors.extend(errors)

    def add_error(self, path: str, message: str) -> None:
        self.add_errors([(path, message)])

    def set_label(self, cell_id: int, label: str | None, who: str) -> Cell:
        """Reclassify a cell (``label=None`` excludes it); confirming the model's call marks it reviewed."""
        self._check_open()
        cell = self.cell(cell_id)
        if label is None:
            status, action = EXCLUDED, "exclude"
        elif label == cell.predicted:
            status, action = REVIEWED, "confirm" if cell.label == label else "reclassify"
        else:
            status, action = RECLASSIFIED, "reclassify"
        previous = cell.label
        with self.store.transaction():
            self.store.db.execute("UPDATE cells SET label = ?, status = ? WHERE id = ?", (label, status, cell_id))
            self._audit(cell_id, who, action, previous, label)
        cell.label, cell.status = label, status
        return cell

    def accept_page(self, cell_ids: Iterable[int], who: str) -> list[Cell]:
        """A person looked at these cells together (a gallery page of one class) and agrees with each call:
        verified as *accepted*, which the report counts apart from cells confirmed one by one."""
        self._check_open()
        cells = [self.cell(cell_id) for cell_id in cell_ids]
        cells = [cell for cell in cells if cell.status == AUTO and cell.label is not None]
        with self.store.transaction():
            for cell in cells:
                self.store.db.execute("UPDATE cells SET status = ? WHERE id = ?", (ACCEPTED, cell.id))
                self._audit(cell.id, who, "confirm page", cell.label, cell.label)
        for cell in cells:
            cell.status = ACCEPTED
        return cells

    def restore(self, cell_id: int, label: str | None, status: str, who: str, action: str = "undo") -> Cell:
        """Put a cell back to an earlier label and status (an undo: a model call can become unverified again);
        audited like any change."""
        self._check_open()
        cell = self.cell(cell_id)
        previous = cell.label
        with self.store.transaction():
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
    ) -> None:
        """Change the case's header fields (``wbc_count=None`` clears it; ``False`` leaves it)."""
        self._check_open()
        info = self.info
        if sample_id is not None:
            info.sample_id = sample_id
        if operator is not None:
            info.operator = operator
        if wbc_count is not False:
            info.wbc_count = wbc_count  # type: ignore[assignment]
        if target is not None:
            info.target = target
        self.store._write(
            "UPDATE cases SET sample_id = ?, operator = ?, wbc_count = ?, target = ? WHERE id = ?",
            (info.sample_id, info.operator, info.wbc_count, info.target, self.id),
        )

    def set_model(self, model: dict) -> None:
        self.info.model = dict(model)
        self.store._write("UPDATE cases SET model = ? WHERE id = ?", (json.dumps(model), self.id), durable=False)

    def sign_out(self, who: str, incomplete_reason: str | None = None) -> None:
        """Record who signed the differential and when; the case is locked from then on.

        A case with model calls no person verified, or counted short of its target, signs out only with a
        typed reason (an *incomplete* sign-out, printed on the report): :func:`core.signout.sign_out_check`."""
        self._check_open()
        if not who.strip():
            raise ValueError("sign-out needs the name of the person signing")
        reason = (incomplete_reason or "").strip() or None
        check = sign_out_check(self)
        if not check.complete and reason is None:
            raise SignOutRefused(check)
        at = now()
        action = "sign-out" if reason is None else f"sign-out incomplete: {reason}"
        with self.store.transaction():
            self.store.db.execute(
                "UPDATE cases SET signed_by = ?, signed_at = ?, incomplete_reason = ? WHERE id = ?",
                (who, at, reason, self.id),
            )
            self._audit(None, who, action, None, None, at)
        self.info.signed_by, self.info.signed_at, self.info.incomplete_reason = who, at, reason

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
    ) -> Differential:
        """The differential over ``classes``; a lab category a person put a cell in (core.classes.CATEGORIES)
        gets its row too."""
        return summarize(
            (cell.label for cell in self.cells),
            classes=classes,
            wbc_count=self.info.wbc_count,
            reference_ranges=reference_ranges,
            target=self.info.target,
            optional=CATEGORIES,
        )

    def review_counts(self) -> dict[str, int]:
        """How many cells a person reviewed (confirmed), reclassified or excluded."""
        counts = {REVIEWED: 0, RECLASSIFIED: 0, EXCLUDED: 0, ACCEPTED: 0, AUTO: 0}
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
            "wbc_count": info.wbc_count,
            "target": info.target,
            "signed_by": info.signed_by,
            "signed_at": info.signed_at,
            "incomplete_reason": info.incomplete_reason,
            "review": self.review_counts(),
        }


def case_report(
    case: Case, classes: tuple[str, ...], reference_ranges=None, review_threshold: float | None = None
) -> tuple[list[ExportCell], Differential, dict]:
    """What the exports of a case contain: its cells (each saying whether it needs review, given the threshold),
    its differential and the JSON document."""
    from wbc_desktop.core.export import build_report

    cells = [cell.to_export(review_threshold) for cell in case.cells]
    differential = case.differential(classes, reference_ranges)
    report = build_report(cells, differential, model=case.info.model, errors=case.errors, case=case.header())
    return cells, differential, report
