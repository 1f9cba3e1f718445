"""Keeping the case store safe on disk: a damaged file found at start-up is moved aside (never overwritten), a
daily copy is made with SQLite's online backup (consistent while the app runs), and a copy can be restored."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path

KEEP_DAILY = 14  # two weeks of daily copies
SIDE_FILES = ("-wal", "-shm")  # SQLite's write-ahead log and its index travel with the database


class StoreDamaged(Exception):
    """The case store is not a readable SQLite database, or fails its integrity check."""


def check_store(path: Path) -> None:
    """Raise :class:`StoreDamaged` if ``path`` exists and is not a sound database (``PRAGMA quick_check``).
    A database that is merely locked by another program is not damaged: that error propagates as it is."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        connection = sqlite3.connect(path)
        try:
            result = [row[0] for row in connection.execute("PRAGMA quick_check")]
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise
        raise StoreDamaged(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise StoreDamaged(str(error)) from None
    if result != ["ok"]:
        raise StoreDamaged("; ".join(result[:3]))


def move_aside(path: Path, why: str = "damaged") -> Path:
    """Rename the store (and its log files) to ``<name>.<why>-<time>``; the new name."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", *SIDE_FILES):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, f"{target}{suffix}")
    return target


def daily_backup(path: Path, folder: Path, keep: int = KEEP_DAILY, today: dt.date | None = None) -> Path | None:
    """Today's copy of the store in ``folder`` (made if missing, through a temp file and a rename); the oldest
    copies beyond ``keep`` are removed. None if there is no store yet."""
    if not path.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"cases-{(today or dt.date.today()).isoformat()}.sqlite"
    if not target.exists():
        temporary = target.with_suffix(".tmp")
        source, copy = sqlite3.connect(path), sqlite3.connect(temporary)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        os.replace(temporary, target)
    for old in backups(folder)[keep:]:
        old.unlink(missing_ok=True)
    return target


def backups(folder: Path) -> list[Path]:
    """The daily copies, newest first."""
    return sorted(folder.glob("cases-*.sqlite"), reverse=True) if folder.is_dir() else []


def restore(path: Path, backup: Path) -> Path | None:
    """Put ``backup`` in place of the store (closed by the caller first); the current store is moved aside,
    never deleted. Returns where it went (None if there was none)."""
    check_store(backup)
    moved = move_aside(path, "before-restore") if path.exists() else None
    temporary = path.with_name(f".{path.name}.restoring")
    shutil.copyfile(backup, temporary)
    os.replace(temporary, path)
    return moved
