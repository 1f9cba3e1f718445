"""Other labs: the out-of-domain warning, in the CLI's JSON and as the window's banner."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, PBC

from wbc_desktop.cli import main
from wbc_desktop.core.domain import OUT_OF_DOMAIN_MESSAGE

MORE_BCCD = FIXTURES / "bccd_crops_more"


@pytest.mark.model_quality
def test_count_flags_another_labs_batch_but_not_pbc(tmp_path, capsys):
    other, ours = tmp_path / "other.json", tmp_path / "ours.json"
    assert main(["count", str(MORE_BCCD), "--json", str(other)]) == 0
    assert "unlike the data" in capsys.readouterr().err
    report = json.loads(other.read_text())
    assert report["domain"]["flag"] is True and report["domain"]["message"] == OUT_OF_DOMAIN_MESSAGE
    assert all("domain_score" in cell and "unusual" in cell for cell in report["cells"])
    assert main(["count", str(PBC), "--json", str(ours)]) == 0
    report = json.loads(ours.read_text())
    assert report["domain"]["flag"] is False and report["domain"]["score"] < report["domain"]["threshold"]


@pytest.mark.model_quality
def test_gui_shows_the_other_lab_banner(qtbot):
    from conftest import drop, make_window

    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [PBC])
    assert not window.banner.isVisible()
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [MORE_BCCD])
    assert window.banner.isVisible() and "unlike the data the model was trained on" in window.banner.text()
    assert "classified by the stain-robust model" in window.banner.text()
