"""Classes beyond the five normal white cells: immature granulocytes count in the differential, erythroblasts
(NRBC) and platelets are reported per 100 WBC outside it, and NRBC correct the WBC count; in every export."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, PBC
from fakes import FakeClassifier

from wbc_desktop.core.classes import ALL_CLASSES, display_order, is_wbc
from wbc_desktop.core.differential import format_table, summarize
from wbc_desktop.core.export import csv_text
from wbc_desktop.core.settings import LabSettings
from wbc_desktop.paths import profiles_dir

EXTRA = FIXTURES / "pbc_extra"
EIGHT = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "immature_granulocyte",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
)  # the order a model trained on both PBC folders has (alphabetical)


def sample_differential(wbc_count: float | None = 10.0):
    labels = ["neutrophil"] * 55 + ["lymphocyte"] * 30 + ["immature_granulocyte"] * 15 + ["erythroblast"] * 8
    return summarize([*labels, "platelet", "platelet", None], classes=display_order(EIGHT), wbc_count=wbc_count)


def test_ig_counts_in_the_differential_and_nrbc_platelets_per_100_wbc():
    differential = sample_differential()
    assert differential.total == 100 and differential.excluded == 1  # 55 + 30 + 15 white cells
    assert [row.label for row in differential.rows][-1] == "immature_granulocyte"
    assert differential.percent["immature_granulocyte"] == 15.0
    assert next(r for r in differential.rows if r.label == "immature_granulocyte").flag == "H"  # above 0-1 %
    assert differential.non_wbc == {"erythroblast": 8, "platelet": 2}
    assert differential.nrbc_per_100_wbc == 8.0 and differential.per_100_wbc("platelet") == 2.0
    # 8 NRBC per 100 WBC (>= 5): WBC x 100 / (100 + 8), and the absolute counts use it
    assert differential.corrected_wbc_count == pytest.approx(10.0 * 100 / 108)
    assert differential.wbc_count_corrected
    neutrophils = next(r for r in differential.rows if r.label == "neutrophil")
    assert neutrophils.absolute == pytest.approx(0.55 * 10.0 * 100 / 108)
    table = format_table(differential)
    assert "8.0 per 100 WBC" in table and "corrected for NRBC: 9.26" in table


def test_few_nrbc_are_reported_but_do_not_correct_the_absolute_counts():
    labels = ["neutrophil"] * 97 + ["lymphocyte"] * 3 + ["erythroblast"] * 2
    differential = summarize(labels, classes=display_order(EIGHT), wbc_count=5.0)
    assert differential.nrbc_per_100_wbc == 2.0 and not differential.wbc_count_corrected
    assert next(r for r in differential.rows if r.label == "neutrophil").absolute == pytest.approx(5.0 * 0.97)


def test_csv_and_json_carry_the_non_wbc_block():
    differential = sample_differential()
    rows = list(csv.reader(csv_text([], EIGHT, differential).splitlines()))
    assert ["erythroblast", "8", "8.00", "", "", "", ""] in rows
    corrected = next(row for row in rows if row and row[0] == "wbc_count_corrected_for_nrbc")
    assert corrected[5] == "9.259" and corrected[6] == "used"
    document = json.loads(json.dumps(differential.to_dict()))
    assert document["non_wbc"]["platelet"] == {"count": 2, "per_100_wbc": 2.0}
    assert document["nrbc_per_100_wbc"] == 8.0 and document["absolute_counts_use_corrected_wbc"] is True


def test_five_class_models_and_cases_keep_their_differential():
    five = summarize(["neutrophil", "monocyte", None])
    assert five.non_wbc == {} and "non_wbc" not in five.to_dict() and five.total == 2
    assert [c for c in ALL_CLASSES if not is_wbc(c)] == ["erythroblast", "platelet"]


def test_saved_five_key_maps_keep_their_keys_and_gain_six_to_eight():
    saved = {"key_map": {"1": "lymphocyte", "2": "neutrophil", "3": "basophil", "4": "eosinophil", "5": "monocyte"}}
    settings = LabSettings.from_dict(saved)
    assert settings.key_map["1"] == "lymphocyte" and settings.key_map["2"] == "neutrophil"
    assert [settings.key_map[k] for k in "678"] == ["immature_granulocyte", "erythroblast", "platelet"]
    assert LabSettings.from_dict({"key_map": {"1": "not-a-class"}}).key_map["1"] == "neutrophil"


class EightClassFake(FakeClassifier):
    """Calls each image by its folder-like colour: here every cell of a field an erythroblast."""

    def __init__(self, call: str):
        super().__init__()
        self.classes = EIGHT
        self.call = call

    def predict(self, images):
        rows = np.full((len(images), len(self.classes)), 0.01)
        rows[:, self.classes.index(self.call)] = 1.0 - 0.01 * (len(self.classes) - 1)
        return rows


def test_an_erythroblast_found_in_a_field_is_not_a_white_cell(tmp_path, capsys):
    from wbc_desktop.core.pipeline import classify_iter

    field = FIXTURES / "bccd_fields" / "BloodImage_00000.jpg"
    results = list(classify_iter([field], EightClassFake("erythroblast"), mode="field"))
    assert results and all(r.ok and r.label == "erythroblast" and r.box is not None for r in results)
    differential = summarize([r.label for r in results], classes=display_order(EIGHT))
    assert differential.total == 0 and differential.non_wbc["erythroblast"] == len(results)


def test_window_reports_nrbc_per_100_wbc_and_the_corrected_count_in_panel_and_pdf(qtbot, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    from conftest import drop, make_window

    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [PBC, EXTRA / "erythroblast"])
    cells = window.case.cells
    for cell in cells:  # the technician files each cell where it belongs, the new classes included
        window.review.reclassify([cell.id], Path(cell.path).parent.name)
    window.case.update_details(wbc_count=8.0)
    window.refresh_differential()
    differential = window.case.differential(window.classes)
    assert differential.total == 20 and differential.non_wbc["erythroblast"] == 3
    assert differential.nrbc_per_100_wbc == 15.0
    assert "Erythroblast (NRBC): 3 (15.0 per 100 WBC" in window.differential_panel.summary.text()
    assert "corrected for NRBC: 6.96" in window.differential_panel.summary.text()
    pdf_path, json_path = tmp_path / "case.pdf", tmp_path / "case.json"
    window.cases.export("pdf", pdf_path)
    window.cases.export("json", json_path)
    text = " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(pdf_path).pages).split())
    assert "Per 100 WBC" in text and "15.0" in text and "6.96" in text
    assert json.loads(json_path.read_text())["differential"]["corrected_wbc_count"] == pytest.approx(8 * 100 / 115)


def test_a_profile_made_for_another_model_is_not_used_and_the_window_says_so(qtbot):
    """After an update to a model with other classes, a lab's old profile is refused by name, never mis-mapped,
    and the window still classifies with the bundled model."""
    from conftest import make_window

    from wbc_desktop.core.lab_profile import Head, Profile
    from wbc_desktop.gui import settings_store
    from wbc_desktop.inference.litert import LiteRTClassifier

    five = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil")
    head = Head(list(five), np.zeros(4), np.ones(4), np.zeros((4, 5)), np.zeros(5))
    Profile("old-lab", {"name": "wbc-mobilenetv2", "version": "2.1.0", "sha256": "c0c6" + "0" * 60}, head).save(
        profiles_dir() / "old-lab"
    )
    settings = LabSettings()
    settings.profile = "old-lab"
    settings_store.save_settings(settings)
    window = make_window(qtbot)
    assert isinstance(window.classifier, LiteRTClassifier)
    assert "Lab profile 'old-lab' is not used" in window.banner.text() and "another model" in window.banner.text()


def test_a_lab_category_beyond_the_models_classes_counts_where_it_belongs(qtbot, tmp_path):
    """A blast counts in the differential (its own row, shown once used); a smudge cell is reported per 100
    WBC outside it; both wait in the gallery's Other categories column; a key can stand for a category."""
    from conftest import drop, make_window, solid_images

    from wbc_desktop.core.classes import CATEGORIES
    from wbc_desktop.gui.models import OTHER_GROUP

    window = make_window(qtbot, FakeClassifier())
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 10))
    rows = [row.label for row in window.case.differential(window.classes).rows]
    assert "blast" not in rows  # a category without cells adds no row
    cells = window.case.cells
    window.review.reclassify([cells[0].id], "blast")
    window.review.reclassify([cells[1].id], "smudge_cell")
    differential = window.case.differential(window.classes)
    assert next(row for row in differential.rows if row.label == "blast").count == 1
    assert differential.total == 9 and differential.non_wbc["smudge_cell"] == 1
    assert set(window.gallery.cell_ids(OTHER_GROUP)) == {cells[0].id, cells[1].id}
    window.settings.key_map["8"] = "plasma_cell"
    window.activateWindow()
    window.table.setFocus()
    window.review.select_cell(cells[2].id)
    qtbot.keyClick(window.table, "8")
    assert cells[2].label == "plasma_cell" and "plasma_cell" in CATEGORIES
    window.cases.export("csv", tmp_path / "c.csv")
    text = (tmp_path / "c.csv").read_text()
    assert "\nblast,1," in text.replace("\r\n", "\n") and "smudge_cell,1,11.11" in text


def test_ig_sub_types_refine_the_models_ig_and_add_up_to_one_ig_figure():
    labels = ["neutrophil"] * 90 + ["immature_granulocyte"] * 4 + ["myelocyte"] * 4 + ["metamyelocyte"] * 2
    differential = summarize(labels, classes=display_order(EIGHT), optional=("myelocyte", "metamyelocyte", "blast"))
    assert differential.ig_total == (10, 10.0)
    assert [r.label for r in differential.rows if r.count] == [
        "neutrophil",
        "immature_granulocyte",
        "myelocyte",
        "metamyelocyte",
    ]
    assert json.loads(json.dumps(differential.to_dict()))["ig_total"] == {"count": 10, "percent": 10.0, "flag": "H"}
    assert "IG, all" in format_table(differential)
    assert differential.ig_flag == "H"  # 10 % IG against 0-1 %: the left shift stays flagged after refining
    assert ["ig_total", "10", "10.00", "", "", "", "H"] in list(
        csv.reader(csv_text([], EIGHT, differential).splitlines())
    )
    blasts = summarize(["neutrophil"] * 99 + ["blast"], classes=display_order(EIGHT), optional=("blast",))
    assert next(r for r in blasts.rows if r.label == "blast").flag == "H"  # any blast in blood is flagged
    assert summarize(["immature_granulocyte"], classes=display_order(EIGHT)).ig_total is None  # its row says it


def test_a_lab_chooses_its_categories_in_settings(qtbot, window, tmp_path):
    """Settings › Categories: the categories in use are those a technician can file into (the menu lists them, a key
    for one that is off says so and changes nothing); an unknown name in saved settings is dropped."""
    from conftest import drop, solid_images

    from wbc_desktop.gui.settings_dialog import SettingsDialog

    assert LabSettings.from_dict({"categories": ["artefact", "bogus", "blast"]}).categories == ("blast", "artefact")
    assert len(LabSettings.from_dict({}).categories) == 12  # settings saved before categories: all in use
    dialog = SettingsDialog(window.settings)
    qtbot.addWidget(dialog)
    for label, box in dialog.category_boxes.items():
        box.setChecked(label == "blast")
    window.apply_settings(dialog.result_settings())
    assert window.settings.categories == ("blast",)
    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 2))
    cell = window.case.cells[0]
    menu = window.review.cell_menu([cell.id])
    others = next(action.menu() for action in menu.actions() if action.text() == "Other categories")
    assert [action.text().split("\t")[0] for action in others.actions()] == ["Blast"]
    window.settings.key_map["8"] = "smudge_cell"  # a key left on a category that is no longer in use
    window.review.select_cell(cell.id)
    window.review.key_label("8")
    assert window.case.cell(cell.id).label != "smudge_cell" and "not in use" in window.statusBar().currentMessage()
    window.settings.categories = ()
    assert "Other categories" not in [action.text() for action in window.review.cell_menu([cell.id]).actions()]


def test_a_lab_adds_its_own_category_and_it_keeps_its_meaning_after_sign_out(qtbot, window, tmp_path):
    """Settings › Categories › A category of your own: a white cell the catalogue lacks (counted in the
    differential) and an object outside it (per 100 WBC); a key files into it; sign-out freezes which is which,
    so that the signed report stays the same when the lab's settings change; bad names are refused."""
    from conftest import drop, signer, solid_images

    from wbc_desktop.core.case import case_report
    from wbc_desktop.core.classes import category_name_problem
    from wbc_desktop.core.signout import sign_out_check
    from wbc_desktop.gui.settings_dialog import SettingsDialog
    from wbc_desktop.lis.codes import RESULT_CODES
    from wbc_desktop.lis.hl7 import local_code
    from wbc_desktop.lis.outbox import Outbox
    from wbc_desktop.lis.send import queue_case

    assert category_name_problem("blast", ("blast",)) and category_name_problem("a|b", ())
    assert category_name_problem("", ()) and category_name_problem("x" * 41, ())
    dialog = SettingsDialog(window.settings)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.new_category, "Smudge cell")  # the catalogue has it: refused, nothing added
    dialog.add_category()
    assert "exists already" in dialog.category_problem.text() and "Smudge_cell" not in dialog.category_boxes
    dialog.new_category.clear()
    qtbot.keyClicks(dialog.new_category, "Hairy cell")
    dialog.add_category()
    qtbot.keyClicks(dialog.new_category, "Megakaryocyte fragment")
    dialog.new_category_counts.setChecked(False)
    dialog.keys["7"].setCurrentIndex(dialog.keys["7"].findText("Hairy cell"))  # the name, as a person reads it
    dialog.accept()  # OK with a typed name adds it too
    window.apply_settings(dialog.result_settings())
    assert window.settings.lab_categories == {"Hairy_cell": True, "Megakaryocyte_fragment": False}
    assert {"Hairy_cell", "Megakaryocyte_fragment"} <= set(window.settings.categories)
    assert window.settings.key_map["7"] == "Hairy_cell"
    assert LabSettings.from_dict(window.settings.to_dict()).lab_categories == window.settings.lab_categories

    with qtbot.waitSignal(window.batch_finished, timeout=30_000):
        drop(window, solid_images(tmp_path / "cells", 4))
    window.case.update_details(target=2)
    cells = window.case.cells
    window.activateWindow()
    window.table.setFocus()
    window.review.select_cell(cells[0].id)
    qtbot.keyClick(window.table, "7")
    assert window.case.cell(cells[0].id).label == "Hairy_cell"
    window.review.reclassify([cells[1].id], "Megakaryocyte_fragment")
    differential = window.case.differential(window.classes, None, window.settings.lab_categories)
    assert next(row for row in differential.rows if row.label == "Hairy_cell").count == 1
    assert differential.total == 3 and differential.non_wbc["Megakaryocyte_fragment"] == 1
    shown = window.differential_panel.model
    assert "Hairy cell" in [shown.index(row, 0).data() for row in range(shown.rowCount())]
    assert sign_out_check(window.case, window.settings.lab_categories).counted == 3
    window.review.reclassify([cell.id for cell in cells[2:]], cells[2].label)  # the rest confirmed
    window.case.update_details(sample_id="S-2026-0003")
    assert window.cases.sign_out(signer(window))
    window.cases.export("csv", tmp_path / "signed.csv")
    text = (tmp_path / "signed.csv").read_text().replace("\r\n", "\n")
    assert "\nHairy_cell,1," in text and "Megakaryocyte_fragment,1,33.33" in text
    # the lab later drops the category from its settings: the signed report still counts it outside
    window.settings.lab_categories = {}
    _, again, _ = case_report(window.case, window.classes, lab_categories={})
    assert again.non_wbc["Megakaryocyte_fragment"] == 1 and again.total == 3
    assert window.case.info.signed_context["lab_categories"] == {"Hairy_cell": True, "Megakaryocyte_fragment": False}
    outbox = Outbox(tmp_path / "lis")  # to the LIS as signed: per 100 WBC, not a percentage
    message = (outbox.pending_dir / f"{queue_case(window.case, outbox, 'Ana')}.hl7").read_text()
    code = local_code("Megakaryocyte_fragment").code  # a local code no lab name can make equal to a table's
    assert f"|{code}^Megakaryocyte fragment^L||33.3|/100{{WBCs}}" in message and "|UNICODE UTF-8" in message
    assert local_code("PLASMA").code != RESULT_CODES["plasma_cell"][0].code and len(code) <= 20


def test_a_case_keeps_what_its_lab_categories_counted_as_whatever_the_settings_say_later(tmp_path):
    """The kind of a lab category is stored with the case when a cell is first filed into it: a category later
    dropped from the settings (or edited there by hand) cannot turn an object counted per 100 WBC into a white
    cell, on screen, in the sign-out check or in the signed report; an amendment keeps it too."""
    from wbc_desktop.core.case import case_report
    from wbc_desktop.core.signout import sign_out_check
    from wbc_desktop.core.store import CaseStore

    store = CaseStore(tmp_path / "cases.sqlite")
    case = store.create_case(sample_id="S1")
    probabilities = {"neutrophil": 1.0}
    case.add_results([(f"c{i}.jpg", "neutrophil", probabilities) for i in range(3)])
    case.set_label(case.cells[0].id, "Megakaryocyte_fragment", "ana", counts=False)
    case.set_label(case.cells[1].id, "Megakaryocyte_fragment", "ana", counts=True)  # first kind kept
    reopened = store.open_case(case.id)
    assert reopened.category_kinds == {"Megakaryocyte_fragment": False}
    settings_lost_it: dict[str, bool] = {}
    differential = reopened.differential(("neutrophil",), None, settings_lost_it)
    assert differential.total == 1 and differential.non_wbc["Megakaryocyte_fragment"] == 2
    assert sign_out_check(reopened).counted == 1
    with pytest.raises(sqlite3.DatabaseError):  # the database refuses to change what the case counted it as
        store.db.execute("UPDATE case_categories SET counts_in_differential = 1")
    reopened.sign_out("ana", "test", {"classes": ["neutrophil"], "reference_ranges": {}, "review_threshold": 0.9})
    assert reopened.info.signed_context["lab_categories"] == {"Megakaryocyte_fragment": False}
    _, signed, _ = case_report(
        store.open_case(case.id), ("neutrophil",), lab_categories={"Megakaryocyte_fragment": True}
    )
    assert signed.total == 1 and signed.non_wbc["Megakaryocyte_fragment"] == 2
    amended = store.amend(case.id, "a second look", "ana")
    assert amended.category_kinds == {"Megakaryocyte_fragment": False}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Smudge-cell", "exists already"),  # the catalogue's "Smudge cell" with a hyphen
        ("\uff22last", "exists already"),  # full-width B: "Blast"
        ("total", "the report uses"),
        ("Excluded", "the report uses"),
        ("not_wbc", "the report uses"),
        ("IG total", "the report uses"),
        ("a|b", "letters, digits"),
    ],
)
def test_a_category_name_that_would_read_as_another_is_refused(name, problem):
    from wbc_desktop.core.classes import CATEGORIES, category_name_problem

    assert problem in (category_name_problem(name, (*ALL_CLASSES, *CATEGORIES)) or "")


def test_a_hand_edited_category_kind_that_is_not_true_or_false_is_dropped():
    loaded = LabSettings.from_dict({"lab_categories": {"Hairy cell": "false", "LGL": False, "Se\u0301zary cell": True}})
    assert loaded.lab_categories == {"LGL": False, "S\u00e9zary_cell": True}  # "false" is a word, not False
    keys = LabSettings.from_dict({"key_map": {"1": "lymphocyte", "4": "neutrophil", "7": "Gone"}}).key_map
    assert (keys["1"], keys["4"], keys["7"]) == ("lymphocyte", "neutrophil", "erythroblast")  # the rest kept
