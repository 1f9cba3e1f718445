"""Tamper evidence for case records (21 CFR Part 11 §11.10(e)): every audit entry carries a SHA-256 chained to
the entry before it, and sign-out seals the case's whole content in one hash.

Anyone with ``sqlite3`` and this source can recompute a chain, so this does not stop a determined forger; it makes
an edit outside the app visible (a broken chain, a seal that no longer matches), and the head hash printed on the
PDF and in the JSON anchors the record in a copy the database does not hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

GENESIS = ""  # the "previous hash" of a case's first audit entry
AUDIT_FIELDS = ("case_id", "cell_id", "at", "who", "action", "from_label", "to_label")


def _jsonable(value):
    """Paths that are not UTF-8 are stored as bytes (core.case); hash them as hex."""
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    raise TypeError(f"cannot hash {type(value).__name__}")


def canonical_json(value) -> str:
    """One text per value: sorted keys, no spaces, NaN refused (it has no JSON form)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable
    )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audit_hash(previous: str, entry: Sequence) -> str:
    """The hash of one audit entry (values in :data:`AUDIT_FIELDS` order) chained to ``previous``."""
    return sha256_text(canonical_json([previous, list(entry)]))


def content_hash(header: dict, cells: list, errors: list, audit_head: str) -> str:
    """The seal of a signed case: its header (with sign-out, model and the reference ranges used), every cell with
    its call, label and status, its problems, and the audit entry the sign-out follows."""
    return sha256_text(canonical_json({"header": header, "cells": cells, "errors": errors, "audit_head": audit_head}))


@dataclass
class Integrity:
    """What checking one case found; ``problems`` empty means the record is as WBC Desktop wrote it."""

    case_id: int
    head: str = GENESIS  # the hash of the case's last audit entry: printed on reports
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def message(self) -> str:
        if self.intact:
            return f"case {self.case_id}: intact (audit head {self.head[:16]})"
        return f"case {self.case_id}: ALTERED outside WBC Desktop: " + "; ".join(self.problems)


def check_chain(case_id: int, rows: Sequence[Sequence]) -> Integrity:
    """Walk a case's audit entries in order; each row is ``(id, *AUDIT_FIELDS values, prev_hash, hash)``."""
    result = Integrity(case_id)
    previous = GENESIS
    for row in rows:
        entry_id, values, prev_hash, stored = row[0], row[1:-2], row[-2], row[-1]
        if prev_hash != previous:
            result.problems.append(
                f"audit entry {entry_id} does not follow the one before it (entries deleted, inserted or reordered)"
            )
        if stored != audit_hash(prev_hash or GENESIS, values):
            result.problems.append(f"audit entry {entry_id} was changed")
        previous = stored or GENESIS
    result.head = previous
    return result
