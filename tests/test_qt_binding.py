"""The Qt binding itself: PySide6 6.12.0 dropped a reference to None each time C++ called a Python override that
returned None, and the window aborted after a few minutes of review ("Fatal Python error: deallocating None").
pyproject.toml keeps that release out; this catches it (or a later one like it) wherever the app is installed."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget


class Painted(QWidget):
    def paintEvent(self, event) -> None:  # returns None, as every void override does
        pass


def test_python_overrides_returning_none_do_not_drain_nones_references(qtbot):
    widget = Painted()
    qtbot.addWidget(widget)
    widget.resize(50, 50)
    widget.show()
    qtbot.waitExposed(widget)
    before = sys.getrefcount(None)
    for _ in range(200):
        widget.repaint()
    assert sys.getrefcount(None) - before > -50, "this PySide6 release loses a reference to None per override call"
