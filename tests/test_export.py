"""CSV/JSON exports: content, atomicity and clear errors."""

from __future__ import annotations

import json
import os

import pytest

from wbc_desktop.core import atomic
from wbc_desktop.core.atomic import ExportError, atomic_write_text
from wbc_desktop.core.differential import CLASSES, summarize
from wbc_desktop.core.export import (
    ExportCell,
    build_report,
    read_csv_cells,
    write_csv,
    write_json,
)


def sample_cells():
    probabilities = dict.fromkeys(CLASSES, 0.05) | {"neutrophil": 0.8}
    return [
        ExportCell('a, "quoted".jpg', "neutrophil", probabilities),
        ExportCell("b\nnewline é.jpg", "lymphocyte", probabilities, status="reclassified", predicted="neutrophil"),
        ExportCell("c.jpg", None, probabilities, status="excluded", predicted="neutrophil"),
    ]


def test_csv_rows_and_summary(tmp_path):
    cells = sample_cells()
    differential = summarize(cell.label for cell in cells)
    path = tmp_path / "out.csv"
    write_csv(path, cells, CLASSES, differential)
    rows = read_csv_cells(path)
    assert [row["path"] for row in rows] == [cell.path for cell in cells]
    assert rows[1]["label"] == "lymphocyte" and rows[1]["predicted"] == "neutrophil"
    assert rows[2]["status"] == "excluded" and rows[2]["label"] == ""
    assert float(rows[0]["p_neutrophil"]) == pytest.approx(0.8)
    text = path.read_text(encoding="utf-8")
    assert "neutrophil,1,50.00," in text and "total,2" in text and "excluded,1" in text


def test_json_report_round_trip(tmp_path):
    cells = sample_cells()
    differential = summarize((cell.label for cell in cells), wbc_count=6.0)
    report = build_report(
        cells, differential, model={"name": "m", "version": "1", "sha256": "x"}, errors=[("bad.jpg", "empty")]
    )
    path = tmp_path / "out.json"
    write_json(path, report)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded["counts"]["neutrophil"] == 1 and loaded["counts"]["lymphocyte"] == 1
    assert loaded["differential"]["excluded"] == 1
    assert loaded["cells"][1]["path"] == "b\nnewline é.jpg"
    assert loaded["errors"] == [{"path": "bad.jpg", "error": "empty"}]
    assert set(loaded["percent"]) == set(CLASSES)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")

    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(ExportError, match="No space left"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind


def test_unwritable_target_gives_clear_error(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        atomic_write_text(tmp_path / "no" / "such" / "folder.csv", "x")


def test_export_has_normal_file_permissions(tmp_path):
    path = tmp_path / "x.csv"
    atomic_write_text(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_csv_cells_that_look_like_formulas_are_escaped(tmp_path):
    """OWASP's CSV-injection rule: a file name (or a profile's class name) starting with = + - @ tab or CR is
    text in a spreadsheet, not a formula; the app's own reader gives the original back."""
    from wbc_desktop.core.differential import summarize
    from wbc_desktop.core.export import ExportCell, read_csv_cells, write_csv

    names = [
        '=HYPERLINK("http://x","click").jpg',
        "+1.jpg",
        "-2.jpg",
        "@SUM(A1).jpg",
        "\tx.jpg",
        "plain.jpg",
        "'=a.jpg",
    ]
    cells = [ExportCell(name, "neutrophil", {"neutrophil": 1.0}) for name in names]
    write_csv(tmp_path / "c.csv", cells, ("neutrophil",), summarize(["neutrophil"] * len(names)))
    raw = (tmp_path / "c.csv").read_text(encoding="utf-8")
    assert '"\'=HYPERLINK(""http://x"",""click"").jpg"' in raw and "'+1.jpg" in raw and "'@SUM" in raw
    assert "\nplain.jpg," in raw.replace("\r\n", "\n")
    assert [row["path"] for row in read_csv_cells(tmp_path / "c.csv")] == names


def test_json_never_holds_a_bare_nan():
    """A model that returns NaN must not produce a file other programs refuse: NaN and infinity become null,
    and the call is marked as needing review."""
    import json

    from wbc_desktop.core.export import ExportCell, json_text
    from wbc_desktop.core.review import NOT_A_NUMBER, review_reason

    probabilities = {"neutrophil": float("nan"), "monocyte": float("inf")}
    cell = ExportCell("a.jpg", "neutrophil", probabilities, review=review_reason(probabilities.values(), 0.9))
    document = json.loads(json_text({"cells": [cell.to_dict()]}))  # the strict parser accepts it
    assert document["cells"][0]["probabilities"] == {"neutrophil": None, "monocyte": None}
    assert document["cells"][0]["needs_review"] and document["cells"][0]["review_reason"] == NOT_A_NUMBER
    assert "NaN" not in json_text({"x": [float("nan")]})
