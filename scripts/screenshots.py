"""Take the README's screenshots of the real window (run under Xvfb: `xvfb-run -s '-screen 0 1600x1000x24'`).

    python scripts/screenshots.py [--out docs] [--images tests/fixtures/pbc]

Writes cells.png, gallery.png, differential.png (the right-hand panel), field.png, other_lab.png, report.png
(page 1 of the PDF, needs pdftoppm), settings.png and settings_categories.png (a lab's own category added), after
dropping the images, reclassifying two cells and excluding one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--images", type=Path, default=ROOT / "tests" / "fixtures" / "pbc")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["WBC_DESKTOP_DATA_DIR"] = tempfile.mkdtemp(prefix="wbc-shots-")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from wbc_desktop.gui.main_window import MainWindow
    from wbc_desktop.gui.settings_dialog import SettingsDialog

    QApplication(sys.argv[:1])
    window = MainWindow()
    window.resize(1500, 900)
    window.show()

    def wait_for(signal, timeout_ms: int = 60_000) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    def settle(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    if window.classifier is None:
        wait_for(window.model_ready)
    window.classify_paths([str(args.images)])
    wait_for(window.batch_finished)
    case = window.case
    case.update_details(sample_id="S-2026-1128-07", operator="A. Technician", wbc_count=7.4)
    window.case_bar.show_case(case.info)
    window.differential_panel.set_wbc_count(7.4)
    wrong = [cell for cell in case.cells if Path(cell.path).parent.name != cell.label]
    for cell in wrong[:2]:
        window.review.reclassify([cell.id], Path(cell.path).parent.name)
    window.review.reclassify([case.cells[-1].id], None)
    window.refresh_differential()
    window.review.select_cell(case.cells[2].id)
    settle(800)
    window.grab().save(str(args.out / "cells.png"))
    window.differential_panel.grab().save(str(args.out / "differential.png"))
    window.tabs.setCurrentIndex(1)
    settle()
    window.grab().save(str(args.out / "gallery.png"))

    # A smear field: the field view with its labelled boxes (a second case).
    fields = ROOT / "tests" / "fixtures" / "bccd_fields"
    window.cases.new_case()
    window.classify_paths([str(fields / "BloodImage_00010.jpg")])
    wait_for(window.batch_finished)
    window.tabs.setCurrentIndex(0)
    window.review.select_cell(window.case.cells[0].id)
    settle(600)
    window.grab().save(str(args.out / "field.png"))

    # Another lab's crops: the banner, and the calls of the stain-robust model (a third case).
    window.cases.new_case()
    window.classify_paths([str(ROOT / "tests" / "fixtures" / "bccd_crops")])
    wait_for(window.batch_finished)
    window.tabs.setCurrentIndex(0)
    window.review.select_cell(window.case.cells[0].id)
    settle(600)
    window.grab().save(str(args.out / "other_lab.png"))
    window.cases.resume_case(case.id)
    settle()

    pdf = Path(tempfile.mkdtemp()) / "report.pdf"
    window.accounts.add("atech", "A. Technician", "screenshot-password")
    window.cases.sign_out(window.accounts.authenticate("atech", "screenshot-password"))
    window.cases.export("pdf", pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(args.out / "report")], check=True)
    dialog = SettingsDialog(window.settings, window.classifier, window)
    dialog.show()
    settle()
    dialog.grab().save(str(args.out / "settings.png"))
    dialog.tabs.setCurrentIndex(dialog.tabs.indexOf(dialog.categories_page))
    dialog.new_category.setText("Hairy cell")
    dialog.add_category()
    settle()
    dialog.grab().save(str(args.out / "settings_categories.png"))
    dialog.close()
    window.close()
    print(f"screenshots written to {args.out}")


if __name__ == "__main__":
    main()
