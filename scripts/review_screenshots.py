"""Screenshots of the review flow at a laptop's and a desktop's size (run each under Xvfb with that screen):

    xvfb-run -s "-screen 0 1280x720x24" python scripts/review_screenshots.py --tag 1280x720
    xvfb-run -s "-screen 0 1600x1000x24" python scripts/review_screenshots.py --tag 1600x1000

Writes docs/review_gallery_<tag>.png (the gallery mid-review: a cell reclassified by key, the next one of its
column highlighted), docs/review_signout_<tag>.png (the sign-out check refusing an unfinished case) and, once,
docs/report_incomplete.png (page 1 of an INCOMPLETE report; needs pdftoppm).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", required=True, help="names the files, e.g. 1280x720")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    os.environ["WBC_DESKTOP_DATA_DIR"] = tempfile.mkdtemp(prefix="wbc-review-shots-")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QMessageBox

    from wbc_desktop.core.signout import sign_out_check
    from wbc_desktop.gui.main_window import MainWindow
    from wbc_desktop.gui.models import REVIEW_GROUP

    app = QApplication([])
    window = MainWindow()
    window.setGeometry(app.primaryScreen().availableGeometry())  # Xvfb has no window manager to maximise it
    window.show()

    def settle(ms: int = 400) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_for(signal, timeout_ms: int = 120_000) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    wait_for(window.model_ready)
    window.classify_paths([str(FIXTURES / "pbc"), str(FIXTURES / "pbc_extra"), str(FIXTURES / "bccd_crops")])
    wait_for(window.batch_finished)
    window.tabs.setCurrentWidget(window.gallery)
    settle()
    waiting = window.gallery.cell_ids(REVIEW_GROUP)
    column = window.gallery.columns[REVIEW_GROUP]
    if waiting:
        window.review.select_cell(waiting[0])
        column.setFocus()
        key = next(k for k, v in window.settings.key_map.items() if v == "neutrophil")
        QTest.keyClick(column, key)
    settle()
    window.grab().save(str(args.out / f"review_gallery_{args.tag}.png"))

    check = sign_out_check(window.case)
    box = QMessageBox(QMessageBox.Icon.Warning, "Sign out", "This case is not ready to sign out.", parent=window)
    box.setInformativeText("\n".join(f"• {problem}" for problem in check.problems()))
    box.addButton("Go to the first cell to verify", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Sign out incomplete…", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.show()
    settle()
    screen = app.primaryScreen().grabWindow(0)
    screen.save(str(args.out / f"review_signout_{args.tag}.png"))
    box.close()

    if shutil.which("pdftoppm") and not (args.out / "report_incomplete.png").exists():
        window.case.update_details(sample_id="S-2026-118", operator="A. Tech", wbc_count=7.4)
        window.accounts.add("atech", "A. Tech", "screenshot-password")
        signer = window.accounts.authenticate("atech", "screenshot-password")
        window.cases.sign_out(signer, "smear too thin: 41 cells counted, 100 asked")
        with tempfile.TemporaryDirectory() as folder:
            pdf = Path(folder) / "report.pdf"
            window.cases.export("pdf", pdf)
            subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(Path(folder) / "p")])
            shutil.copy(next(Path(folder).glob("p*.png")), args.out / "report_incomplete.png")
    window.close()


if __name__ == "__main__":
    main()
