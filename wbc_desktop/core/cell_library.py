"""The lab's verified-cell library: every cell a person confirmed or corrected in a signed-out case.

It is what the lab model learns from (core/lab_model.py). Each cell's image is copied into the library under the
SHA-256 of its bytes (a field's cell is cut out of the field first), so a moved or deleted image folder loses
nothing and a cell is never stored twice; each entry keeps its case, its cell, the label a person gave it and the
case's sign-out seal (the audit link: core/integrity.py). Excluded cells and the model's own unreviewed calls are
never added. The index is a small SQLite database beside the images.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from wbc_desktop.core.atomic import atomic_write_bytes
from wbc_desktop.core.fields import Detection, crop_cell
from wbc_desktop.core.images import ImageLoadError, load_image
from wbc_desktop.core.status import Status

LEARNED_FROM = (Status.REVIEWED, Status.RECLASSIFIED, Status.ACCEPTED)  # a person confirmed or corrected the label
INDEX_FILE = "library.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    sha256 TEXT NOT NULL,
    file TEXT NOT NULL,
    label TEXT NOT NULL,
    case_id INTEGER NOT NULL,
    cell_id INTEGER NOT NULL,
    seal TEXT,
    added_at TEXT NOT NULL,
    PRIMARY KEY (case_id, cell_id)
);
"""


@dataclass(frozen=True)
class LibraryCell:
    path: Path  # the library's own copy
    label: str
    sha256: str
    case_id: int
    cell_id: int
    seal: str | None


class CellLibrary:
    """A folder of verified cells (``cells/``) and their index; safe to open from several windows."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        (self.folder / "cells").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.folder / INDEX_FILE, timeout=10)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])

    def cells(self, classes: Iterable[str] | None = None) -> list[LibraryCell]:
        """The entries whose image is still there, oldest first; only ``classes`` when given."""
        wanted = None if classes is None else set(classes)
        rows = self._db.execute(
            "SELECT file, label, sha256, case_id, cell_id, seal FROM cells ORDER BY added_at, case_id, cell_id"
        ).fetchall()
        out = []
        for file, label, digest, case_id, cell_id, seal in rows:
            path = self.folder / "cells" / file
            if (wanted is None or label in wanted) and path.exists():
                out.append(LibraryCell(path, label, digest, case_id, cell_id, seal))
        return out

    def add_signed_case(self, case, loader: Callable[[Path], np.ndarray] = load_image) -> tuple[int, list[str]]:
        """Add the verified cells of a signed-out ``case`` (core.case.Case); returns how many were added and the
        problems (a cell whose image cannot be read any more is skipped and named)."""
        info = case.info
        if not info.signed:
            raise ValueError("only a signed-out case adds to the verified-cell library")
        problems: list[str] = []
        added = 0
        fields: dict[str, np.ndarray] = {}
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        known = {row[0] for row in self._db.execute("SELECT cell_id FROM cells WHERE case_id = ?", (info.id,))}
        for cell in case.cells:
            if cell.status not in LEARNED_FROM or not cell.label or cell.id in known:
                continue
            try:
                data, suffix = self._image_bytes(cell, fields, loader)
            except (OSError, ImageLoadError, ValueError) as error:
                problems.append(f"{cell.path}: {error}")
                continue
            digest = hashlib.sha256(data).hexdigest()
            file = digest + suffix
            target = self.folder / "cells" / file
            if not target.exists():
                atomic_write_bytes(target, data)
            with self._db:
                inserted = self._db.execute(
                    "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (digest, file, cell.label, info.id, cell.id, info.content_hash, now),
                ).rowcount
            added += inserted
        return added, problems

    @staticmethod
    def _image_bytes(cell, fields: dict[str, np.ndarray], loader) -> tuple[bytes, str]:
        """A single-cell image's own bytes (its format kept); a field cell's crop as PNG."""
        if cell.source and cell.box:
            if cell.source not in fields:
                fields[cell.source] = loader(Path(cell.source))
            crop = crop_cell(fields[cell.source], Detection(tuple(cell.box), 1.0, 0.0))
            buffer = io.BytesIO()
            Image.fromarray(crop).save(buffer, "PNG")
            return buffer.getvalue(), ".png"
        path = Path(cell.path)
        loader(path)  # refuse what cannot be read as an image (the loader's checks) before keeping its bytes
        return path.read_bytes(), path.suffix.lower() or ".img"
