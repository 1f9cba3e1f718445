"""Start the window: show it first, load the model in the background."""

from __future__ import annotations

import sys


def run_gui(paths: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from wbc_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("WBC Desktop")
    app.setOrganizationName("WBC Desktop")
    window = MainWindow()
    window.show()
    if paths:
        window.classify_paths(list(paths))
    return app.exec()
