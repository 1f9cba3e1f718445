"""Start the window: show it first, load the model in the background."""

from __future__ import annotations

import os
import sys


def run_gui(paths: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from wbc_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("WBC Desktop")
    app.setOrganizationName("WBC Desktop")
    from PySide6.QtGui import QIcon

    from wbc_desktop.paths import resource

    app.setWindowIcon(QIcon(str(resource("icons", "wbc-desktop.png"))))
    from wbc_desktop.gui.crash import install
    from wbc_desktop.paths import user_data_dir

    install(user_data_dir())  # an unexpected error: a log in the data folder and a dialog, not a silent exit
    window = MainWindow()
    window.show()
    if os.environ.get("WBC_DESKTOP_BENCH"):
        _report_timings(app, window)
    if paths:
        window.classify_paths(list(paths))
    return app.exec()


def _report_timings(app, window) -> None:
    """For benchmarks/startup.py: print markers when the window is on screen and when a result arrived."""
    app.processEvents()
    print("bench window-visible", flush=True)

    def first_result() -> None:
        print("bench first-result", flush=True)
        app.quit()

    window.batch_finished.connect(first_result)
