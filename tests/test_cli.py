"""``wbc-desktop count`` end to end on real PBC images, with bad files mixed in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from badfiles import write_bad_corpus
from conftest import PBC

from wbc_desktop.cli import main
from wbc_desktop.core.classes import is_wbc
from wbc_desktop.core.export import read_csv_cells


def test_count_end_to_end_on_real_images(tmp_path, capsys):
    corpus = write_bad_corpus(tmp_path / "bad")
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    code = main(
        [
            "count",
            str(PBC),
            str(corpus["truncated_jpeg"]),
            str(corpus["text_as_jpeg"]),
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--wbc-count",
            "7.0",
        ]
    )
    assert code == 0
    report = json.loads(out_json.read_text())
    expected = sorted(PBC.rglob("*.jpg"))
    assert report["images"] == len(expected) == 20
    classes = report["model"]["classes"]
    white = {label for label in classes if is_wbc(label)}  # the differential's rows: the model's white cells
    assert set(report["counts"]) == white and set(report["percent"]) == white
    assert sum(report["counts"].values()) == 20
    assert report["model"]["sha256"] and report["model"]["name"]
    assert {Path(e["path"]).name for e in report["errors"]} == {"truncated.jpg", "notes.jpg"}
    assert all(e["error"] for e in report["errors"])
    cells = {Path(c["path"]).name: c for c in report["cells"]}
    for path in expected:
        cell = cells[path.name]
        assert cell["label"] in classes
        assert set(cell["probabilities"]) == set(classes)
        assert sum(cell["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    rows = read_csv_cells(out_csv)
    assert len(rows) == 20
    table = capsys.readouterr().out
    assert "neutrophil" in table and "total" in table


@pytest.mark.model_quality
def test_count_calls_fixture_cells_correctly(tmp_path):
    """The bundled model gets (nearly all) of the 20 PBC test fixtures right."""
    out_json = tmp_path / "out.json"
    assert main(["count", str(PBC), "--json", str(out_json)]) == 0
    cells = json.loads(out_json.read_text())["cells"]
    correct = sum(Path(cell["path"]).parent.name == cell["label"] for cell in cells)
    assert correct >= 19


def test_count_exits_1_when_nothing_was_classified(tmp_path):
    corpus = write_bad_corpus(tmp_path / "bad")
    out_json = tmp_path / "out.json"
    assert main(["count", str(corpus["empty"]), "--json", str(out_json)]) == 1
    assert json.loads(out_json.read_text())["images"] == 0


def test_count_usage_error_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "wbc_desktop", "count", "--no-such-flag"], capture_output=True, text=True
    )
    assert result.returncode == 2


def test_count_refuses_a_tampered_model(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["count", str(PBC), "--model", str(tmp_path)]) == 1
    assert "manifest lacks" in capsys.readouterr().err


def test_count_reports_unwritable_output(tmp_path, capsys):
    assert main(["count", str(PBC / "basophil"), "--json", str(tmp_path / "missing" / "x.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_progress_goes_to_stderr(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wbc_desktop", "count", str(PBC / "monocyte")], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "classifying [" in result.stderr and "4/4" in result.stderr
    assert "classifying" not in result.stdout


def test_count_marks_each_call_that_needs_a_persons_review(tmp_path):
    """Another lab's cells (all classified by the stain-robust model) always wait for a person, however confident
    the call; PBC cells the model is sure of do not. JSON and CSV say so per cell, the JSON in its summary too."""
    from conftest import BCCD_CROPS

    from wbc_desktop.core.export import read_csv_cells
    from wbc_desktop.core.review import FOREIGN

    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["count", str(BCCD_CROPS), str(PBC), "--json", str(out_json), "--csv", str(out_csv)]) == 0
    report = json.loads(out_json.read_text())
    foreign = [c for c in report["cells"] if "bccd" in c["path"]]
    assert foreign and all(c["needs_review"] and c["review_reason"] == FOREIGN for c in foreign)
    pbc = [c for c in report["cells"] if "bccd" not in c["path"]]
    assert sum(c["needs_review"] for c in pbc) <= 2  # the fixtures are clear cells: at most a couple unsure
    assert report["needs_review"] == sum(c["needs_review"] for c in report["cells"])
    rows = read_csv_cells(out_csv)
    assert {row["path"]: row["needs_review"] for row in rows} == {
        c["path"]: "yes" if c["needs_review"] else "no" for c in report["cells"]
    }


def test_review_rule_sends_unsure_foreign_and_non_numeric_calls_to_a_person():
    from wbc_desktop.core.review import FOREIGN, LOW_CONFIDENCE, NOT_A_NUMBER, review_reason

    assert review_reason([0.97, 0.03], 0.9) is None
    assert review_reason([0.6, 0.4], 0.9) == LOW_CONFIDENCE
    assert review_reason([0.99, 0.01], 0.9, foreign=True) == FOREIGN
    assert review_reason([float("nan"), 0.2], 0.9) == NOT_A_NUMBER and review_reason([], 0.9) == NOT_A_NUMBER


def test_paths_without_a_command_open_the_window_on_them(monkeypatch, tmp_path):
    """`wbc-desktop FOLDER` (a desktop icon's drop, a file manager's 'open with') opens the window; before, it
    failed with "invalid choice". The sub-commands are unchanged."""
    import wbc_desktop.gui.app

    opened = []
    monkeypatch.setattr(wbc_desktop.gui.app, "run_gui", lambda paths: opened.append(paths) or 0)
    assert main([str(PBC), str(tmp_path)]) == 0
    assert main([]) == 0
    assert opened == [[str(PBC), str(tmp_path)], []]
    with pytest.raises(SystemExit):
        main(["--not-an-option"])
