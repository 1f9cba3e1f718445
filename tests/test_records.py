"""Records a lab can sign: the database refuses changes to the audit trail and to signed cases, an edit made
around it with sqlite3 is reported (window and ``verify-cases``), a second window cannot change a case the first
signed, header edits are audited with their stored old values, and a signed report stays what was signed."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from conftest import drop, make_window, signer, solid_images
from fakes import FakeClassifier

from wbc_desktop.cli import main
from wbc_desktop.core.case import case_report, signed_context
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.core.store import CaseStore
from wbc_desktop.lis.hl7 import parse
from wbc_desktop.lis.outbox import Outbox
from wbc_desktop.lis.send import queue_case

CLASSES = ("neutrophil", "lymphocyte")
RANGES = {"neutrophil": (40.0, 75.0), "lymphocyte": (20.0, 45.0)}


def signed_case(path, cells: int = 4):
    """A store with one case, every call confirmed by a person, signed with the lab's ranges."""
    store = CaseStore(path)
    case = store.create_case(sample_id="S-1", operator="Ana", target=cells)
    case.add_results(
        (f"cell{i}.png", CLASSES[i % 2], {CLASSES[i % 2]: 0.96, CLASSES[1 - i % 2]: 0.04}) for i in range(cells)
    )
    for cell in case.cells:
        case.confirm(cell.id, "Ana")
    case.update_details(wbc_count=7.5, who="Ana")
    case.sign_out("Ana", None, signed_context(CLASSES, RANGES, 0.9))
    return store, case


def tamper(path, *statements: str) -> None:
    """What someone with sqlite3 can do: drop the guarding triggers, then edit."""
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit SET who = 'Bob'",
        "DELETE FROM audit WHERE id = 2",
        "UPDATE cells SET label = 'lymphocyte' WHERE id = 1",
        "DELETE FROM cells WHERE id = 1",
        "UPDATE cases SET signed_at = '2026-01-01T00:00:00+00:00'",
        "INSERT INTO cells (case_id, path, predicted, probabilities, label, status) "
        "VALUES (1, 'x.png', 'neutrophil', '{}', 'neutrophil', 'reviewed')",
    ],
)
def test_the_database_refuses_changes_to_the_audit_trail_and_to_signed_cases(tmp_path, statement):
    store, _ = signed_case(tmp_path / "cases.sqlite")
    store.close()
    db = sqlite3.connect(tmp_path / "cases.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="cannot be changed"):
        db.execute(statement)


@pytest.mark.parametrize(
    ("statements", "found"),
    [
        (["UPDATE cells SET label = 'lymphocyte' WHERE id = 1"], "changed after sign-out"),
        (["DELETE FROM audit WHERE id = 3"], "does not follow"),
        (["UPDATE audit SET who = 'Bob' WHERE id = 2"], "audit entry 2 was changed"),
        (["UPDATE cases SET signed_at = '2026-01-01T09:00:00+00:00'"], "changed after sign-out"),
        (["UPDATE cases SET sample_id = 'OTHER-PATIENT'"], "changed after sign-out"),
        (["UPDATE cases SET signed_at = NULL, signed_by = NULL"], "no longer"),
    ],
)
def test_an_edit_made_around_the_app_is_reported_by_verify_cases(tmp_path, capsys, statements, found):
    path = tmp_path / "cases.sqlite"
    store, _case = signed_case(path)
    store.close()
    assert main(["verify-cases", str(path)]) == 0
    tamper(path, *statements)
    assert main(["verify-cases", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ALTERED outside WBC Desktop" in out and found in out


def test_the_window_says_a_record_was_altered_when_it_opens_it(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    store, case = signed_case(path)
    store.close()
    tamper(path, "UPDATE cells SET label = 'lymphocyte' WHERE id = 1", "DELETE FROM audit WHERE id = 4")
    window = make_window(qtbot, FakeClassifier(), store_path=path)
    window.cases.resume_case(case.id)
    assert window.integrity_banner.isVisible()
    assert "altered outside WBC Desktop" in window.integrity_banner.text()
    window.cases.new_case()  # a new, intact case: the red banner goes
    assert not window.integrity_banner.isVisible()


def test_a_store_from_before_hashes_is_chained_and_sealed_on_upgrade(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE cases (id INTEGER PRIMARY KEY, sample_id TEXT NOT NULL DEFAULT '', operator TEXT NOT NULL
            DEFAULT '', created TEXT NOT NULL, wbc_count REAL, target INTEGER NOT NULL DEFAULT 100, model TEXT NOT
            NULL DEFAULT '{}', signed_by TEXT, signed_at TEXT, incomplete_reason TEXT);
        CREATE TABLE cells (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), path TEXT NOT
            NULL, source TEXT, box TEXT, predicted TEXT NOT NULL, probabilities TEXT NOT NULL, label TEXT,
            status TEXT NOT NULL, foreign_call INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), cell_id INTEGER,
            at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, from_label TEXT, to_label TEXT);
        INSERT INTO cases (id, sample_id, created, signed_by, signed_at)
            VALUES (1, 'OLD-1', '2026-11-30T10:00:00', 'Ana', '2026-11-30T11:00:00');
        INSERT INTO cells (case_id, path, predicted, probabilities, label, status)
            VALUES (1, 'a.jpg', 'neutrophil', '{"neutrophil": 0.99}', 'lymphocyte', 'reclassified');
        INSERT INTO audit (case_id, cell_id, at, who, action, from_label, to_label)
            VALUES (1, 1, '2026-11-30T10:30:00', 'Ana', 'reclassify', 'neutrophil', 'lymphocyte');
        INSERT INTO audit (case_id, at, who, action) VALUES (1, '2026-11-30T11:00:00', 'Ana', 'sign-out');
        """
    )
    old.close()
    store = CaseStore(path)
    assert store.verify(1).intact
    assert store.open_case(1).audit()[-1].action == "sealed on upgrade"
    store.close()
    tamper(path, "UPDATE cells SET label = 'neutrophil'")
    assert not CaseStore(path).verify(1).intact


def test_a_second_window_cannot_change_a_case_the_first_signed_out(tmp_path):
    """Two stores on one file, as two windows: B reclassifies, then signs out; A (loaded before) is refused, its
    stale label never reaches the audit trail, and B's WBC count stays."""
    path = tmp_path / "cases.sqlite"
    store_b = CaseStore(path)
    case_b = store_b.create_case(sample_id="S-2", operator="Bea", target=2)
    case_b.add_results([("a.png", "neutrophil", {"neutrophil": 0.97}), ("b.png", "neutrophil", {"neutrophil": 0.97})])
    case_a = CaseStore(path).open_case(case_b.id)  # window A, loaded now
    first = case_b.cells[0].id
    case_b.set_label(first, "lymphocyte", "Bea")
    case_a.set_label(first, "monocyte", "Al")  # A still shows neutrophil: the audit's "from" must say lymphocyte
    change = case_a.audit()[-1]
    assert (change.from_label, change.to_label) == ("lymphocyte", "monocyte")
    case_b.update_details(wbc_count=6.2, who="Bea")
    for cell in case_b.cells:
        case_b.confirm(cell.id, "Bea")
    case_b.sign_out("Bea", None, signed_context(CLASSES, RANGES, 0.9))
    with pytest.raises(CaseLockedError, match="signed out by Bea"):
        case_a.set_label(first, "neutrophil", "Al")
    with pytest.raises(CaseLockedError):
        case_a.update_details(sample_id="WRONG", wbc_count=None, who="Al")
    assert case_a.info.signed  # A learned of the signature
    again = CaseStore(path).open_case(case_b.id)
    assert (again.info.sample_id, again.info.wbc_count) == ("S-2", 6.2)
    assert CaseStore(path).verify(case_b.id).intact


def test_sign_out_judges_the_cells_as_stored(tmp_path):
    """A window whose memory says every call is verified still may not sign out what another left unverified."""
    path = tmp_path / "cases.sqlite"
    store = CaseStore(path)
    case = store.create_case(target=1)
    case.add_results([("a.png", "neutrophil", {"neutrophil": 0.97})])
    case.cells[0].status = "reviewed"  # memory only: nothing was confirmed in the database
    with pytest.raises(Exception, match="not verified"):
        case.sign_out("Ana")


def test_header_edits_are_audited_with_the_stored_old_value(tmp_path):
    store = CaseStore(tmp_path / "cases.sqlite")
    case = store.create_case(sample_id="S-3", operator="Ana")
    case.update_details(sample_id="S-3b", wbc_count=5.0, who="Ana")
    case.update_details(sample_id="S-3b", operator="Bo", who="Bo")  # the sample ID unchanged: no entry for it
    entries = [(e.action, e.from_label, e.to_label, e.who) for e in case.audit()[1:]]
    assert entries == [
        ("edit sample_id", "S-3", "S-3b", "Ana"),
        ("edit wbc_count", None, "5.0", "Ana"),
        ("edit operator", "Ana", "Bo", "Bo"),
    ]


def test_a_signed_report_is_the_same_after_the_lab_changes_its_reference_ranges(tmp_path):
    store, case = signed_case(tmp_path / "cases.sqlite", cells=10)
    _, differential, report = case_report(case, CLASSES, RANGES, 0.9)
    flags = [row.flag for row in differential.rows]
    wider = {"neutrophil": (0.0, 100.0), "lymphocyte": (0.0, 100.0)}
    reopened = CaseStore(tmp_path / "cases.sqlite").open_case(case.id)
    _, later, later_report = case_report(reopened, (*CLASSES, "monocyte"), wider, 0.5)
    assert [row.flag for row in later.rows] == flags and ("H" in flags or "L" in flags)
    assert json.dumps(later_report, sort_keys=True) == json.dumps(report, sort_keys=True)
    assert later_report["case"]["content_hash"] == case.info.content_hash
    assert later_report["case"]["audit_head"] == store.head(case.id)


def test_exports_are_audited_and_the_pdf_prints_the_seal(qtbot, tmp_path):
    window = make_window(qtbot, FakeClassifier(confidence=0.97))
    window.settings.target_count = 3
    window.cases.new_case()
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 3))
    for cell in window.case.cells:
        window.case.confirm(cell.id, "Ana")
    window.case.update_details(sample_id="S-2026-0001")
    assert window.cases.sign_out(signer(window))
    window.cases.export("json", tmp_path / "case.json")
    window.cases.export("pdf", tmp_path / "case.pdf")
    assert [e.action for e in window.case.audit()[-2:]] == ["export json", "export pdf"]
    from wbc_desktop.gui.report import report_html

    _, differential, _ = case_report(window.case, window.classes)
    html = report_html(window.case, differential)
    assert window.case.info.content_hash in html and window.store.head(window.case.id) in html
    saved = json.loads((tmp_path / "case.json").read_text())
    assert saved["case"]["content_hash"] == window.case.info.content_hash


def test_a_case_open_in_one_window_is_read_only_in_another(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    first = make_window(qtbot, FakeClassifier(), store_path=path)
    case = first.cases.new_case()
    with qtbot.waitSignal(first.batch_finished, timeout=30_000):
        drop(first, solid_images(tmp_path / "cells", 2))
    second = make_window(qtbot, FakeClassifier(), store_path=path)
    second.cases.resume_case(case.id)
    assert second.case.read_only and "open in another WBC Desktop window" in second.banner.text()
    with pytest.raises(CaseLockedError):
        second.case.set_label(second.case.cells[0].id, "lymphocyte", "Bo")
    first.cases.new_case()  # the first window lets go of the case: a third window may change it
    third = make_window(qtbot, FakeClassifier(), store_path=path)
    third.cases.resume_case(case.id)
    assert not third.case.read_only


def test_a_signed_case_is_amended_as_a_new_version_and_the_original_is_kept_as_superseded(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    from wbc_desktop.gui.report import ensure_application, write_pdf

    path = tmp_path / "cases.sqlite"
    store, original = signed_case(path)
    before = case_report(original, CLASSES, RANGES)[2]
    with pytest.raises(ValueError, match="needs its reason"):
        store.amend(original.id, "  ", "Ana")
    amendment = store.amend(original.id, "cell 2 was a monocyte", "Ana")
    assert amendment.info.amends == original.id and not amendment.locked
    assert [(c.path, c.label, c.status) for c in amendment.cells] == [
        (c.path, c.label, c.status) for c in original.cells
    ]
    amendment.set_label(amendment.cells[1].id, "monocyte", "Ana")
    amendment.sign_out("Ana", None, signed_context((*CLASSES, "monocyte"), RANGES, 0.9))
    reopened = store.open_case(original.id)
    assert reopened.info.superseded_by == amendment.id and reopened.cells[1].label == "lymphocyte"
    assert reopened.audit()[-1].action == f"amended by case {amendment.id}"
    assert case_report(reopened, CLASSES, RANGES)[2]["differential"] == before["differential"]  # as signed
    assert store.verify(original.id).intact and store.verify(amendment.id).intact
    ensure_application()
    for case, words in ((reopened, "SUPERSEDED"), (store.open_case(amendment.id), "AMENDED REPORT")):
        _, differential, _ = case_report(case, CLASSES)
        write_pdf(tmp_path / f"{case.id}.pdf", case, differential)
        text = " ".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / f"{case.id}.pdf").pages)
        assert words in " ".join(text.split())
    outbox = Outbox(tmp_path / "lis")
    control_id = queue_case(store.open_case(amendment.id), outbox, "Ana")
    message = parse((outbox.pending_dir / f"{control_id}.hl7").read_bytes().decode())
    assert message.oru_r01_patient_result.oru_r01_order_observation.obr.obr_25.value == "C"  # a corrected result


def test_the_pdf_of_a_fixture_case_has_every_field_a_lab_files_and_a_montage(qtbot, tmp_path, monkeypatch):
    """A one-page report: laboratory, sample, specimen, collection and report times, results with units and
    reference intervals, performed-by and released-by with the meaning, model, seal; and the cells per class."""
    pypdf = pytest.importorskip("pypdf")
    from test_signout import sign_as

    cells = sorted((Path(__file__).parent / "fixtures" / "pbc").rglob("*.jpg"))[:12]
    window = make_window(qtbot, FakeClassifier(confidence=0.97))
    window.settings.target_count = len(cells)
    window.settings.lab_name, window.settings.lab_address = "City Hospital Haematology", "1 Main Street"
    window.cases.new_case()
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, cells)
    window.case.update_details(sample_id="S-2026-0412", wbc_count=7.4, collected="2026-12-03 07:45", who="Ana")
    for cell in window.case.cells:
        window.review.reclassify([cell.id], cell.label)
    sign_as(monkeypatch, window)
    window.cases.ask_sign_out()
    window.settings.lab_name = "Renamed later"  # a signed report prints the laboratory it was signed for
    window.cases.export("pdf", tmp_path / "case.pdf")
    reader = pypdf.PdfReader(tmp_path / "case.pdf")
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    text = unicodedata.normalize("NFKC", text)  # "ﬀ" ligatures of the proportional font, if any
    for expected in (
        "City Hospital Haematology",
        "1 Main Street",
        "S-2026-0412",
        "peripheral blood smear",
        "Collected 2026-12-03 07:45",
        "Reported",
        "Performed by",
        "Released by Ana Tech (ana), reviewed and released",
        "Reference %",
        "×10⁹/L",
        "7.40",
        "Cells by class",
        "Record seal",
        window.case.info.content_hash,
    ):
        assert unicodedata.normalize("NFKC", expected) in text, expected
    assert "Renamed later" not in text and len(reader.pages) == 1
    assert sum(len(page.images) for page in reader.pages) == len(cells)  # every cell shown (fewer than 8 a class)


def test_a_batch_into_a_case_another_window_signs_stops_and_says_so(qtbot, tmp_path):
    path = tmp_path / "cases.sqlite"
    window = make_window(qtbot, FakeClassifier(delay=0.05), store_path=path)
    case = window.cases.new_case()
    other = CaseStore(path).open_case(case.id)
    other.sign_out("Bea", "signed elsewhere during the batch")  # the other window signs the empty case
    with qtbot.waitSignal(window.batch_finished, timeout=30_000) as finished:
        drop(window, solid_images(tmp_path / "cells", 40))
    assert finished.args == [True] and "signed out by Bea" in window.banner.text()
    assert CaseStore(path).verify(case.id).intact and not CaseStore(path).open_case(case.id).cells
