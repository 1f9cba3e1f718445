"""Every bad input of the hardening list, through the CLI JSON and the GUI's error list: clear per-file
messages, the batch continues, the rest is classified."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from badfiles import cell_like, write_bad_corpus
from conftest import PBC
from fakes import FakeClassifier

from wbc_desktop.cli import main
from wbc_desktop.core import images

LINUX = sys.platform.startswith("linux")

EXPECTED_ERRORS = {
    "wide.png": "no red cells",  # 8000x3 is read as a field in auto mode: nothing to measure, nothing in it
    "empty.jpg": "empty",
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "notes.jpg": "not an image",
    "bomb.png": "image too large: 100000x100000",
}
LOADS_FINE = {
    "cmyk.jpg",
    "rgba.png",
    "gray.png",
    "palette.png",
    "gray16.tif",
    "gray16.png",
    "one.png",
    "exif.jpg",
    "cell.bmp",
}


@pytest.fixture
def hostile_folder(tmp_path):
    """The bad-input corpus plus odd names, a symlink loop and an unreadable sub-folder, beside real cells."""
    folder = tmp_path / "hostile"
    write_bad_corpus(folder)
    cells = sorted((PBC / "neutrophil").glob("*.jpg"))[:2]
    for cell in cells:
        (folder / cell.name).write_bytes(cell.read_bytes())
    long_name = "cell_" + "x" * 200 + ".png"  # 205 characters: near the 255-byte limit of most file systems
    cell_like().save(folder / long_name)
    (folder / "zelle_ünïcödé_细胞.png").write_bytes((folder / long_name).read_bytes())
    if LINUX:
        raw = os.fsencode(str(folder)) + b"/bad_name_\xff\xfe.png"  # not valid UTF-8
        with open(raw, "wb") as handle:
            handle.write((folder / long_name).read_bytes())
        os.symlink(folder, folder / "loop")
    (folder / "locked").mkdir()
    cell_like().save(folder / "locked" / "hidden_from_us.png")
    return folder


def blocked_scandir(monkeypatch, blocked: Path):
    """Root reads every folder, so the OS's 'permission denied' is simulated for one folder."""
    real = os.scandir

    def scandir(path):
        if os.path.realpath(os.fspath(path)) == os.path.realpath(blocked):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(images.os, "scandir", scandir)


def test_cli_json_reports_each_bad_input_and_classifies_the_rest(hostile_folder, tmp_path, monkeypatch):
    blocked_scandir(monkeypatch, hostile_folder / "locked")
    out = tmp_path / "out.json"
    assert main(["count", str(hostile_folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    errors = {Path(e["path"]).name: e["error"] for e in report["errors"]}
    for name, words in EXPECTED_ERRORS.items():
        assert words in errors[name], (name, errors.get(name))
    assert errors["locked"] == "folder cannot be read: permission denied"
    classified = {Path(c["path"]).name for c in report["cells"]}
    assert classified >= LOADS_FINE
    assert "zelle_ünïcödé_细胞.png" in classified
    assert any(name.startswith("cell_xxxx") for name in classified)
    if LINUX:
        assert "bad_name_\udcff\udcfe.png" in classified  # exact name survives the JSON round trip
        assert not any("loop" in c["path"] for c in report["cells"])  # the symlink loop is not followed twice
    assert report["images"] == len(report["cells"])


def test_gui_lists_each_bad_input_and_keeps_going(qtbot, hostile_folder, monkeypatch):
    from conftest import drop, make_window

    blocked_scandir(monkeypatch, hostile_folder / "locked")
    window = make_window(qtbot, FakeClassifier())
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [hostile_folder])
    problems = [window.problems.item(i).text() for i in range(window.problems.count())]
    for name, words in EXPECTED_ERRORS.items():
        assert any(name in text and words in text for text in problems), name
    assert any("locked" in text and "permission denied" in text for text in problems)
    names = {Path(cell.path).name for cell in window.case.cells}
    assert names >= LOADS_FINE
    if LINUX:
        # the undecodable name is stored losslessly and shown readably
        reopened = window.store.open_case(window.case.id)
        assert "bad_name_\udcff\udcfe.png" in {Path(c.path).name for c in reopened.cells}
        row = next(r for r, c in enumerate(window.case.cells) if "bad_name" in c.path)
        assert window.cells_model.index(row, 0).data() == "bad_name_\ufffd\ufffd.png"


def test_gui_refuses_a_tampered_model_clearly(qtbot, tmp_path):
    from conftest import drop

    from wbc_desktop.gui.main_window import MainWindow
    from wbc_desktop.paths import model_store_dir

    for name in ("manifest.json", "wbc_mobilenetv2.tflite"):
        (tmp_path / name).write_bytes((model_store_dir() / name).read_bytes())
    content = bytearray((tmp_path / "wbc_mobilenetv2.tflite").read_bytes())
    content[-10] ^= 0x55
    (tmp_path / "wbc_mobilenetv2.tflite").write_bytes(bytes(content))
    window = MainWindow(model_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.model_failed, timeout=30_000) as failed:
        pass
    assert "does not match its manifest" in failed.args[0]
    assert window.banner.isVisible() and "does not match its manifest" in window.banner.text()
    drop(window, [PBC / "basophil"])  # dropping images now explains instead of failing silently
    assert window.case is None and "cannot be used" in window.banner.text()
