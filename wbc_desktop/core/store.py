"""The SQLite file holding every case: its schema, the triggers that keep signed records and the audit trail from
changing, transactions, and the integrity check (core.integrity) that finds edits made outside the app.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from wbc_desktop.core.case import Case
from wbc_desktop.core.integrity import AUDIT_FIELDS, GENESIS, Integrity, audit_hash, check_chain, content_hash
from wbc_desktop.core.records import CaseInfo, Cell, now, path_from_db

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
    incomplete_reason TEXT,
    signed_context TEXT,
    content_hash TEXT,
    signer_id TEXT,
    signature_meaning TEXT,
    amends INTEGER REFERENCES cases(id),
    amend_reason TEXT,
    collected TEXT
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
    to_label TEXT,
    prev_hash TEXT,
    hash TEXT
);
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL
);
-- A lab's own category, as the case first used it: whether it counts in the differential. Kept with the case, so
-- that a category later removed from the settings (or edited there by hand) cannot change what it counted.
CREATE TABLE IF NOT EXISTS case_categories (
    case_id INTEGER NOT NULL REFERENCES cases(id),
    label TEXT NOT NULL,
    counts_in_differential INTEGER NOT NULL,
    PRIMARY KEY (case_id, label)
);
CREATE INDEX IF NOT EXISTS cells_by_case ON cells(case_id);
CREATE INDEX IF NOT EXISTS audit_by_case ON audit(case_id);
"""

# The database itself refuses what the app never does: changing the audit trail, or anything of a signed case.
# (Someone with sqlite3 can drop a trigger; the hashes then show the edit: CaseStore.verify.)
_SIGNED = "(SELECT signed_at FROM cases WHERE id = {}.case_id) IS NOT NULL"
TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_case_no_update BEFORE UPDATE ON cases WHEN OLD.signed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_case_no_delete BEFORE DELETE ON cases WHEN OLD.signed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_cells_no_update BEFORE UPDATE ON cells WHEN {_SIGNED.format("OLD")}
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_cells_no_delete BEFORE DELETE ON cells WHEN {_SIGNED.format("OLD")}
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_cells_no_insert BEFORE INSERT ON cells WHEN {_SIGNED.format("NEW")}
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_errors_no_insert BEFORE INSERT ON errors WHEN {_SIGNED.format("NEW")}
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS case_categories_no_update BEFORE UPDATE ON case_categories
BEGIN SELECT RAISE(ABORT, 'what a category counts as in a case cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS case_categories_no_delete BEFORE DELETE ON case_categories
BEGIN SELECT RAISE(ABORT, 'what a category counts as in a case cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS signed_categories_no_insert BEFORE INSERT ON case_categories
WHEN {_SIGNED.format("NEW")}
BEGIN SELECT RAISE(ABORT, 'the case is signed out and cannot be changed'); END;
"""

SEAL_ACTIONS = ("sign-out", "sealed on upgrade")  # audit actions whose to_label is the case's content hash
HEADER_COLUMNS = (
    "sample_id",
    "operator",
    "created",
    "wbc_count",
    "target",
    "model",
    "signed_by",
    "signed_at",
    "incomplete_reason",
    "signed_context",
    "signer_id",
    "signature_meaning",
    "amends",
    "amend_reason",
    "collected",
)
CELL_COLUMNS = ("id", "path", "source", "box", "predicted", "probabilities", "label", "status", "foreign_call")


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
        # Another window or program holding the write lock: wait a little rather than fail at once (another
        # window's change takes milliseconds); longer and the window says "not saved" and keeps the change.
        self.db.execute("PRAGMA busy_timeout=1000")
        self.db.executescript(SCHEMA)
        self._migrate()
        self.db.executescript(TRIGGERS)

    def _migrate(self) -> None:
        """Columns added since a store was created (CREATE TABLE IF NOT EXISTS keeps an old table as it is)."""
        case_columns = {row[1] for row in self.db.execute("PRAGMA table_info(cases)")}
        for column in (
            "incomplete_reason",
            "signed_context",
            "content_hash",
            "signer_id",
            "signature_meaning",
            "collected",
        ):
            if column not in case_columns:
                self._write(f"ALTER TABLE cases ADD COLUMN {column} TEXT")
        if "amends" not in case_columns:
            self._write("ALTER TABLE cases ADD COLUMN amends INTEGER REFERENCES cases(id)")
            self._write("ALTER TABLE cases ADD COLUMN amend_reason TEXT")
        if "foreign_call" not in {row[1] for row in self.db.execute("PRAGMA table_info(cells)")}:
            self._write("ALTER TABLE cells ADD COLUMN foreign_call INTEGER NOT NULL DEFAULT 0")
        if "hash" not in {row[1] for row in self.db.execute("PRAGMA table_info(audit)")}:
            self._seal_old_records()

    def _seal_old_records(self) -> None:
        """A store from before tamper evidence: chain its audit entries and seal its signed cases as they are now
        (an edit made before this upgrade cannot be told apart; the seal entry says when hashing began)."""
        with self.transaction():
            self.db.execute("ALTER TABLE audit ADD COLUMN prev_hash TEXT")
            self.db.execute("ALTER TABLE audit ADD COLUMN hash TEXT")
            previous: dict[int, str] = {}
            for row in self.db.execute(f"SELECT id, {', '.join(AUDIT_FIELDS)} FROM audit ORDER BY id").fetchall():
                prev = previous.get(row[1], GENESIS)
                previous[row[1]] = audit_hash(prev, row[1:])
                self.db.execute(
                    "UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, previous[row[1]], row[0])
                )
            for (case_id,) in self.db.execute("SELECT id FROM cases WHERE signed_at IS NOT NULL").fetchall():
                head = previous.get(case_id, GENESIS)
                seal = content_hash(*self.content(case_id), head)
                self.db.execute("UPDATE cases SET content_hash = ? WHERE id = ?", (seal, case_id))
                self.append_audit(case_id, None, "WBC Desktop", "sealed on upgrade", None, seal)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN ... COMMIT (ROLLBACK on error). Explicit, because in autocommit mode (isolation_level=None)
        ``with connection:`` issues no BEGIN and every statement would be a transaction of its own: a crash
        between a reclassification and its audit entry would then leave them disagreeing (the SIGKILL test
        caught exactly that). IMMEDIATE takes the write lock first, so what a change reads (is the case signed?
        what is the cell's label?) cannot be changed by another window before it writes.

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

    def append_audit(
        self, case_id: int, cell_id: int | None, who: str, action: str, from_label, to_label, at: str = ""
    ) -> str:
        """INSERT one audit entry chained to the case's last (inside the caller's transaction); its hash."""
        row = self.db.execute(
            "SELECT hash FROM audit WHERE case_id = ? ORDER BY id DESC LIMIT 1", (case_id,)
        ).fetchone()
        previous = row[0] if row and row[0] else GENESIS
        values = (case_id, cell_id, at or now(), who, action, from_label, to_label)
        digest = audit_hash(previous, values)
        self.db.execute(
            f"INSERT INTO audit ({', '.join(AUDIT_FIELDS)}, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, previous, digest),
        )
        return digest

    def create_case(
        self, sample_id: str = "", operator: str = "", model: dict | None = None, target: int = 100
    ) -> Case:
        with self.transaction(durable=False):  # an empty case holds nothing a person did yet
            cursor = self.db.execute(
                "INSERT INTO cases (sample_id, operator, created, target, model) VALUES (?, ?, ?, ?, ?)",
                (sample_id, operator, now(), target, json.dumps(model or {})),
            )
            case_id = int(cursor.lastrowid)
            self.append_audit(case_id, None, operator or "WBC Desktop", "create case", None, sample_id or None)
        return self.open_case(case_id)

    def case_infos(self, unfinished_only: bool = False) -> list[CaseInfo]:
        """Cases newest first, with their number of cells."""
        rows = self.db.execute(
            f"SELECT {_INFO_SELECT}, (SELECT COUNT(*) FROM cells WHERE case_id = c.id) FROM cases c ORDER BY c.id DESC"
        ).fetchall()
        infos = [_info(row[:-1], row[-1]) for row in rows]
        return [info for info in infos if not info.signed] if unfinished_only else infos

    def amend(self, case_id: int, reason: str, who: str) -> Case:
        """A new version of a signed case, to correct it: header, cells (labels, statuses) and problems copied,
        unsigned, naming the case it amends and why. The signed original stays as it was (its audit trail notes
        the amendment) and is printed as superseded; the amendment is signed on its own."""
        reason = reason.strip()
        if not reason:
            raise ValueError("an amendment needs its reason (printed on the amended report)")
        original = self.open_case(case_id)
        if not original.info.signed:
            raise ValueError("only a signed-out case is amended; an open case is simply changed")
        info = original.info
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO cases (sample_id, operator, created, wbc_count, target, model, amends, amend_reason, "
                "collected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.sample_id,
                    info.operator,
                    now(),
                    info.wbc_count,
                    info.target,
                    json.dumps(info.model),
                    case_id,
                    reason,
                    info.collected,
                ),
            )
            new_id = int(cursor.lastrowid)
            self.append_audit(new_id, None, who, "create case", None, info.sample_id or None)
            self.db.execute(
                f"INSERT INTO cells (case_id, {', '.join(CELL_COLUMNS[1:])}) "
                f"SELECT ?, {', '.join(CELL_COLUMNS[1:])} FROM cells WHERE case_id = ? ORDER BY id",
                (new_id, case_id),
            )
            self.db.execute(
                "INSERT INTO errors (case_id, path, message) SELECT ?, path, message FROM errors "
                "WHERE case_id = ? ORDER BY id",
                (new_id, case_id),
            )
            self.db.execute(  # what each lab category counted as, as the original was signed with
                "INSERT INTO case_categories SELECT ?, label, counts_in_differential FROM case_categories "
                "WHERE case_id = ?",
                (new_id, case_id),
            )
            self.append_audit(new_id, None, who, f"amendment of case {case_id}", None, reason)
            self.append_audit(case_id, None, who, f"amended by case {new_id}", None, reason)
        return self.open_case(new_id)

    def case_info(self, case_id: int) -> CaseInfo:
        row = self.db.execute(f"SELECT {_INFO_SELECT} FROM cases c WHERE c.id = ?", (case_id,)).fetchone()
        if row is None:
            raise KeyError(f"no case {case_id}")
        return _info(row)

    def open_case(self, case_id: int) -> Case:
        info = self.case_info(case_id)
        cells = [
            Cell(
                id=r[0],
                path=path_from_db(r[1]),
                source=path_from_db(r[2]) if r[2] is not None else None,
                box=json.loads(r[3]) if r[3] else None,
                predicted=r[4],
                probabilities=json.loads(r[5]),
                label=r[6],
                status=r[7],
                foreign=bool(r[8]),
            )
            for r in self.db.execute(
                f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE case_id = ? ORDER BY id", (case_id,)
            )
        ]
        errors = [
            (path_from_db(r[0]), r[1])
            for r in self.db.execute("SELECT path, message FROM errors WHERE case_id = ? ORDER BY id", (case_id,))
        ]
        kinds = {
            label: bool(counts)
            for label, counts in self.db.execute(
                "SELECT label, counts_in_differential FROM case_categories WHERE case_id = ?", (case_id,)
            )
        }
        return Case(self, info, cells, errors, category_kinds=kinds)

    # --- integrity -----------------------------------------------------------------------------------------
    def content(self, case_id: int) -> tuple[dict, list, list]:
        """A case's header, cells and problems as stored: what sign-out seals."""
        row = self.db.execute(f"SELECT {', '.join(HEADER_COLUMNS)} FROM cases WHERE id = ?", (case_id,)).fetchone()
        header = dict(zip(HEADER_COLUMNS, row, strict=True))
        cells = [
            list(r)
            for r in self.db.execute(
                f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE case_id = ? ORDER BY id", (case_id,)
            )
        ]
        errors = [
            list(r)
            for r in self.db.execute("SELECT path, message FROM errors WHERE case_id = ? ORDER BY id", (case_id,))
        ]
        return header, cells, errors

    def _audit_rows(self, case_id: int) -> list[tuple]:
        return self.db.execute(
            f"SELECT id, {', '.join(AUDIT_FIELDS)}, prev_hash, hash FROM audit WHERE case_id = ? ORDER BY id",
            (case_id,),
        ).fetchall()

    def head(self, case_id: int) -> str:
        """The hash that anchors a case outside the database: for a signed case its sign-out entry's (the same on
        every later export), else its last audit entry's."""
        rows = self._audit_rows(case_id)
        seals = [row for row in rows if row[5].startswith(SEAL_ACTIONS)]
        last = seals[-1] if seals else (rows[-1] if rows else None)
        return last[-1] or GENESIS if last else GENESIS

    def verify(self, case_id: int) -> Integrity:
        """Check one case: its audit chain unbroken, and a signed case's content still what was sealed."""
        rows = self._audit_rows(case_id)
        result = check_chain(case_id, rows)
        seal_rows = [row for row in rows if row[5].startswith(SEAL_ACTIONS)]
        stored = self.db.execute("SELECT signed_at, content_hash FROM cases WHERE id = ?", (case_id,)).fetchone()
        if stored is None:
            result.problems.append("the case was deleted (its audit entries remain)")
            return result
        signed_at, sealed = stored
        if signed_at is None:
            if seal_rows:
                result.problems.append(f"the case was signed out (audit entry {seal_rows[-1][0]}) but is no longer")
            return result
        if not seal_rows:
            result.problems.append("the case is marked signed but its audit trail has no sign-out")
            return result
        seal_row = seal_rows[-1]
        if seal_row[7] != sealed:
            result.problems.append("the seal stored with the case differs from the one in its sign-out entry")
        if content_hash(*self.content(case_id), seal_row[-2] or GENESIS) != seal_row[7]:
            result.problems.append("cells, labels or header were changed after sign-out")
        return result

    def verify_all(self) -> list[Integrity]:
        """Every case, and the audit entries of cases that no longer exist."""
        ids = {row[0] for row in self.db.execute("SELECT id FROM cases")}
        ids |= {row[0] for row in self.db.execute("SELECT DISTINCT case_id FROM audit")}
        return [self.verify(case_id) for case_id in sorted(ids)]


_INFO_SELECT = (
    "c.id, c.sample_id, c.operator, c.created, c.wbc_count, c.target, c.model, c.signed_by, c.signed_at, "
    "c.incomplete_reason, c.signed_context, c.content_hash, c.signer_id, c.signature_meaning, c.amends, "
    "c.amend_reason, (SELECT MAX(n.id) FROM cases n WHERE n.amends = c.id), c.collected"
)


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
        signed_context=json.loads(row[10]) if row[10] else None,
        content_hash=row[11],
        signer_id=row[12],
        signature_meaning=row[13],
        amends=row[14],
        amend_reason=row[15],
        superseded_by=row[16],
        collected=row[17],
    )
