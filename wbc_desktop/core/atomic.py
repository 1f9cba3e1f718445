"""Writing a file so that it holds either its old content or the new one, never a part (temp file in the same
folder, fsync, rename): every export, model bundle, profile, LIS message and backup step goes through here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class ExportError(Exception):
    """An export could not be written; the message says where and why."""


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], content: bytes) -> None:
    """Write ``content`` so that ``path`` holds either its old content or the new one, never a part."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: folder {folder} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise ExportError(f"cannot write {target}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates 0600 files; give the export the mode an ordinary new file would have.
        os.chmod(temporary, _default_file_mode())
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ExportError(f"cannot write {target}: {error.strerror or error}") from None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8; an undecodable file name inside ``text`` is written back as the bytes the file system has."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))
