"""Other labs: the out-of-domain warning and lab profiles (adapt)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BCCD_CROPS, FIXTURES, PBC

from wbc_desktop.cli import main
from wbc_desktop.core.adapt import Head, Profile, ProfileError, load_profile
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
    from test_gui import drop, make_window

    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [PBC])
    assert not window.banner.isVisible()
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [MORE_BCCD])
    assert window.banner.isVisible() and "unlike the data the model was trained on" in window.banner.text()


def test_adapt_writes_a_profile_beside_the_model_and_evaluate_uses_it(tmp_path, capsys):
    verified = tmp_path / "verified"
    for folder in (BCCD_CROPS, MORE_BCCD):
        for image in folder.rglob("*.jpg"):
            (verified / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, verified / image.parent.name / image.name)
    out = tmp_path / "profiles" / "our-lab"
    assert main(["adapt", str(verified), "--out", str(out)]) == 0
    profile = load_profile(out)
    assert profile.name == "our-lab" and profile.cells == 40
    assert profile.validation["head"] == "correction" and profile.head.base_weight > 0  # the default
    assert profile.validation["cells_held_back"] >= 5 and 0.0 <= profile.validation["accuracy"] <= 1.0
    assert "held-back accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(verified), "--profile", str(out)]) == 0
    assert "accuracy:" in capsys.readouterr().out
    scratch = tmp_path / "profiles" / "scratch"
    assert main(["adapt", str(verified), "--out", str(scratch), "--head", "scratch"]) == 0
    assert load_profile(scratch).head.base_weight == 0 and load_profile(scratch).validation["head"] == "scratch"


def test_adapt_refuses_to_write_into_the_model_store(capsys):
    from wbc_desktop.paths import model_store_dir

    assert main(["adapt", str(BCCD_CROPS), "--out", str(model_store_dir())]) == 2
    assert "never over it" in capsys.readouterr().err


def test_profile_for_another_model_is_refused(tmp_path, capsys):
    import numpy as np

    head = Head(["a", "b"], np.zeros(3), np.ones(3), np.zeros((3, 2)), np.zeros(2))
    Profile("x", {"name": "other", "version": "9", "sha256": "0" * 64}, head).save(tmp_path)
    assert main(["count", str(PBC / "basophil"), "--profile", str(tmp_path)]) == 1
    assert "fitted on another model" in capsys.readouterr().err


def test_damaged_profile_is_refused(tmp_path):
    (tmp_path / "profile.json").write_text("{")
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path)


def test_gui_adapt_to_my_lab_uses_verified_cells(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox
    from test_gui import drop, make_window

    from wbc_desktop.inference.profile import ProfileClassifier

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: shown.append(args[2]))
    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [PBC])
    for cell in list(window.case.cells):
        window.reclassify([cell.id], Path(cell.path).parent.name)  # the technician verifies each cell
    paths, labels = window.verified_cells()
    assert len(paths) == 20 and sorted(set(labels)) == sorted(window.classes)
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.adapt_to_lab()
    assert isinstance(window.classifier, ProfileClassifier)
    assert window.settings.profile.startswith("lab-")
    assert any("Lab profile" in text and "20 verified cells" in text for text in shown)
