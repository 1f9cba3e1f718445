"""``wbc-desktop verify-cases [DB]``: check every case's audit chain and sign-out seal without the window; exit 1
when any record was altered outside WBC Desktop (core.integrity)."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from wbc_desktop.commands.common import EXIT_NOTHING, EXIT_OK, EXIT_USAGE
from wbc_desktop.core.store import CaseStore
from wbc_desktop.paths import user_data_dir


def run_verify_cases(args: argparse.Namespace) -> int:
    path = args.database or user_data_dir() / "cases.sqlite"
    if not path.is_file():
        print(f"error: no case store at {path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = CaseStore(path)
        results = store.verify_all()
    except sqlite3.DatabaseError as error:
        print(f"error: {path} cannot be read as a case store: {error}", file=sys.stderr)
        return EXIT_NOTHING
    try:
        for integrity in results:
            if args.verbose or not integrity.intact:
                print(integrity.message())
    finally:
        store.close()
    altered = [integrity.case_id for integrity in results if not integrity.intact]
    print(
        f"{len(results)} case(s) checked in {path}: "
        + (
            f"{len(altered)} ALTERED outside WBC Desktop (cases {', '.join(map(str, altered))})"
            if altered
            else "all intact"
        )
    )
    return EXIT_NOTHING if altered else EXIT_OK
