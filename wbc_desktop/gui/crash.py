"""An error nobody expected is written to a log in the data folder and shown in a dialog (the Windows build has
no console); the work already saved stays in the case store."""

from __future__ import annotations

import logging
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

LOG_NAME = "wbc-desktop.log"


def install(folder: Path):
    """Send uncaught exceptions (main thread and worker threads) to the log and a dialog; returns the hook."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / LOG_NAME
    logger = logging.getLogger("wbc_desktop")
    if not any(isinstance(h, RotatingFileHandler) for h in logger.handlers):
        handler = RotatingFileHandler(log_path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)

    def hook(kind, value, traceback) -> None:
        logger.critical("unexpected error", exc_info=(kind, value, traceback))
        if QApplication.instance() is not None and threading.current_thread() is threading.main_thread():
            QMessageBox.critical(
                None,
                "WBC Desktop: unexpected error",
                f"{kind.__name__}: {value}\n\nWhat was saved before is safe in the case store. The details were "
                f"written to {log_path}; please send that file to your administrator.",
            )

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)
    return hook
