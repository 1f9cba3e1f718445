"""A scripted technician verifies 100 cells in the real window (offscreen), twice: one key per cell, and with
confirm page (Ctrl+Enter on each class column's visible cells, Page Down to the next page). Key presses go
through the real event loop (QTest); a 5 ms timer measures how long the window stops answering.

    QT_QPA_PLATFORM=offscreen python benchmarks/review_speed.py [--cells 100] [--size 1280x720]

Prints keys per cell for each way and the worst event-loop stall (the goal: at most 0.3 keys a cell with
confirm page, no stall over 50 ms). The cells are the 20 PBC fixture cells copied to 100, classified by the
bundled model; cells in Needs review are confirmed one by one in both runs (confirm page never takes them).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["WBC_DESKTOP_DATA_DIR"] = tempfile.mkdtemp(prefix="wbc-review-speed-")

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from wbc_desktop.gui.main_window import MainWindow
    from wbc_desktop.gui.models import EXCLUDED_GROUP, REVIEW_GROUP

    app = QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="wbc-cells-"))
    cells = sorted((ROOT / "tests" / "fixtures" / "pbc").rglob("*.jpg"))
    for number in range(args.cells):
        shutil.copy(cells[number % len(cells)], folder / f"cell{number:04d}.jpg")

    def wait_for(signal, timeout_ms: int = 120_000) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def one_run(page_confirm: bool) -> tuple[float, float]:
        window = MainWindow()
        window.resize(width, height)
        window.show()
        wait_for(window.model_ready)
        window.classify_paths([str(folder)])
        wait_for(window.batch_finished)
        window.tabs.setCurrentWidget(window.gallery)
        window.activateWindow()
        keys = 0

        def press(widget, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
            nonlocal keys
            QTest.keyClick(widget, key, modifier, -1)
            keys += 1
            QTest.qWait(10)  # the technician's eye moves on; the event loop runs (and the timer ticks)

        ticks.clear()
        timer.start()
        if page_confirm:  # class pages: one column as wide as the gallery, Ctrl+Page Down to the next
            window.gallery.one_class.setChecked(True)
            keys += 1
        # the script's own bookkeeping (which cells still wait) is kept cheap: its time counts as a stall too
        cells = {cell.id: cell for cell in window.case.cells}
        for group in window.gallery.columns:
            if group == EXCLUDED_GROUP:
                continue
            column = window.gallery.columns[group]
            while True:
                waiting = [cell_id for cell_id in window.gallery.cell_ids(group) if cells[cell_id].status == "auto"]
                if not waiting:
                    break
                window.review.select_cell(waiting[0])  # a click, or Ctrl+Page Down, to this column's first cell: a key
                column.setFocus()
                keys += 1
                if page_confirm and group != REVIEW_GROUP:
                    press(column, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
                    if any(cells[c].status == "auto" for c in window.gallery.cell_ids(group)):
                        press(column, Qt.Key.Key_PageDown)  # the next page of this column
                else:
                    for _ in waiting:
                        press(column, Qt.Key.Key_Return)
        timer.stop()
        unverified = sum(cell.status == "auto" for cell in window.case.cells)
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        stall = (max(gaps) - 0.005) if gaps else 0.0
        verified = len(window.case.cells) - unverified
        window.close()
        return keys / max(verified, 1), stall

    per_cell_keys, per_cell_stall = one_run(page_confirm=False)
    page_keys, page_stall = one_run(page_confirm=True)
    print(f"{args.cells} cells, window {width}x{height} (confirm page in one-class mode: a class page at a time)")
    print(f"one key per cell: {per_cell_keys:.2f} keys/cell; worst event-loop stall {per_cell_stall * 1000:.0f} ms")
    print(f"confirm page:     {page_keys:.2f} keys/cell; worst event-loop stall {page_stall * 1000:.0f} ms")
    app.quit()


if __name__ == "__main__":
    main()
