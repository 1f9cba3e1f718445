"""core/case.py on its own: what each change does to a cell's label and status, and what it audits."""

from __future__ import annotations

import pytest

from wbc_desktop.core.case import Case, case_report, collection_time, signed_context
from wbc_desktop.core.records import CaseLockedError
from wbc_desktop.core.status import Status
from wbc_desktop.core.store import CaseStore

PROBABILITIES = {"neutrophil": 0.95, "lymphocyte": 0.05}


@pytest.fixture
def case(tmp_path) -> Case:
    case = CaseStore(tmp_path / "cases.sqlite").create_case(sample_id="S-1", operator="Ana", target=3)
    case.add_results((f"c{i}.png", "neutrophil", PROBABILITIES) for i in range(3))
    return case


def actions(case: Case) -> list[tuple]:
    return [(e.action, e.from_label, e.to_label) for e in case.audit() if e.cell_id is not None]


def test_confirm_reclassify_exclude_and_back_to_the_models_call(case):
    first, second, third = (cell.id for cell in case.cells)
    assert case.confirm(first, "Ana").status == Status.REVIEWED
    assert case.set_label(second, "lymphocyte", "Ana").status == Status.RECLASSIFIED
    assert case.set_label(third, None, "Ana").status == Status.EXCLUDED
    assert case.set_label(second, "neutrophil", "Ana").status == Status.REVIEWED  # the model's call, restored
    assert actions(case) == [
        ("confirm", "neutrophil", "neutrophil"),
        ("reclassify", "neutrophil", "lymphocyte"),
        ("exclude", "neutrophil", None),
        ("reclassify", "lymphocyte", "neutrophil"),
    ]
    assert case.confirm(third, "Ana").status == Status.EXCLUDED  # confirming an excluded cell changes nothing


def test_confirm_page_accepts_only_calls_nobody_verified(case):
    first, second, third = (cell.id for cell in case.cells)
    case.set_label(first, "lymphocyte", "Ana")
    accepted = case.accept_page([first, second, third], "Ana")
    assert [cell.id for cell in accepted] == [second, third]
    assert [cell.status for cell in case.cells] == [Status.RECLASSIFIED, Status.ACCEPTED, Status.ACCEPTED]


def test_undo_puts_a_cell_back_to_unverified_and_audits_it(case):
    first = case.cells[0].id
    case.set_label(first, "lymphocyte", "Ana")
    cell = case.restore(first, "neutrophil", Status.AUTO, "Ana")
    assert (cell.label, cell.status) == ("neutrophil", Status.AUTO)
    assert actions(case)[-1] == ("undo (back to auto)", "lymphocyte", "neutrophil")


def test_the_differential_and_review_counts_follow_the_labels(case):
    case.set_label(case.cells[0].id, "lymphocyte", "Ana")
    case.set_label(case.cells[1].id, None, "Ana")
    differential = case.differential(("neutrophil", "lymphocyte"))
    assert differential.counts == {"neutrophil": 1, "lymphocyte": 1} and differential.excluded == 1
    counts = case.review_counts()
    assert (counts[Status.RECLASSIFIED], counts[Status.EXCLUDED], counts[Status.AUTO]) == (1, 1, 1)


def test_a_signed_case_refuses_every_change(case):
    for cell in case.cells:
        case.confirm(cell.id, "Ana")
    case.sign_out("Ana", None, signed_context(("neutrophil", "lymphocyte"), {}, 0.9))
    for change in (
        lambda: case.set_label(case.cells[0].id, "lymphocyte", "Ana"),
        lambda: case.add_results([("x.png", "neutrophil", PROBABILITIES)]),
        lambda: case.update_details(sample_id="other"),
        lambda: case.accept_page([case.cells[0].id], "Ana"),
    ):
        with pytest.raises(CaseLockedError):
            change()
    assert case_report(case, ("neutrophil",))[2]["case"]["signed_by"] == "Ana"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("2026-12-01 08:30", "2026-12-01T08:30"),
        ("2026-12-01T08:30:59", "2026-12-01T08:30"),
        ("2026-12-01", "2026-12-01"),
    ],
)
def test_collection_times_are_normalised(typed, stored):
    assert collection_time(typed) == stored


@pytest.mark.parametrize("typed", ["yesterday", "01/12/2026", "2999-01-01 00:00"])
def test_unclear_or_future_collection_times_are_refused(typed):
    with pytest.raises(ValueError, match="collection time"):
        collection_time(typed)


def test_the_session_says_who_works_and_which_threshold_holds(case, monkeypatch):
    """The window's session, Qt-free: the case's operator, else the lab's, else the login; the lab's threshold,
    else the model's."""
    from wbc_desktop.core.session import Session
    from wbc_desktop.core.settings import LabSettings

    monkeypatch.setattr("getpass.getuser", lambda: "login")
    session = Session(LabSettings(operator=""), model_threshold=0.8)
    assert (session.who, session.review_threshold) == ("login", 0.8)
    session.settings.operator = "Lab Tech"
    assert session.who == "Lab Tech"
    session.case = case  # operator "Ana"
    session.settings.review_threshold = 0.95
    assert (session.who, session.review_threshold) == ("Ana", 0.95)
