"""Lab profiles (Adapt to my lab): the CLI's adapt, the window's dialog, fine-tuning, replay cells, refusals."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from conftest import BCCD_CROPS, FIXTURES, PBC

from wbc_desktop.cli import main
from wbc_desktop.core.lab_profile import Head, Profile, ProfileError, load_profile
from wbc_desktop.paths import profiles_dir

MORE_BCCD = FIXTURES / "bccd_crops_more"


def copy_verified_cells(verified: Path) -> Path:
    """The BCCD fixture crops (40) as a class-per-folder set of verified cells."""
    for folder in (BCCD_CROPS, MORE_BCCD):
        for image in folder.rglob("*.jpg"):
            (verified / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, verified / image.parent.name / image.name)
    return verified


def test_adapt_writes_a_profile_beside_the_model_and_evaluate_uses_it(tmp_path, capsys):
    verified = copy_verified_cells(tmp_path / "verified")
    out = tmp_path / "profiles" / "our-lab"
    assert main(["adapt", str(verified), "--out", str(out)]) == 0
    profile = load_profile(out)
    assert profile.name == "our-lab" and profile.cells == 40
    assert profile.validation["head"] == "correction" and profile.head.base_weight > 0  # the default
    assert profile.validation["cells_held_back"] >= 5 and 0.0 <= profile.validation["accuracy"] <= 1.0
    printed = capsys.readouterr().out
    assert "held-back accuracy" in printed and "the model without a profile on the same cells" in printed
    assert 0.0 <= profile.validation["bundled_accuracy"] <= 1.0
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

    from wbc_desktop.inference.lab_profile import ProfileClassifier

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: shown.append(args[2]))
    window = verified_window(qtbot)
    monkeypatch.setattr(window.lab, "choose_adaptation", lambda base: "correction")
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.lab.adapt_to_lab()
    assert isinstance(window.classifier, ProfileClassifier) and window.classifier.tuned is None
    assert window.settings.profile.startswith("lab-")
    assert any("Lab profile" in text and "20 verified cells" in text for text in shown)
    assert any("the model without a profile" in text for text in shown)


def test_gui_keeps_the_model_when_a_profile_does_worse_on_enough_held_back_cells(qtbot, monkeypatch):
    import numpy as np
    from conftest import make_window
    from PySide6.QtWidgets import QMessageBox

    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *args: None)
    window = make_window(qtbot)
    classes = list(window.classes)
    head = Head(classes, np.zeros(3), np.ones(3), np.zeros((3, len(classes))), np.zeros(len(classes)), base_weight=1.0)
    base = {"name": "m", "version": "1", "sha256": "x"}
    worse = Profile("worse", base, head, {"cells_held_back": 25, "accuracy": 0.6, "bundled_accuracy": 0.72}, 120)
    window.lab.adapted(worse)
    assert window.settings.profile != "worse" and warnings and "not in use" in warnings[0]
    assert "60.0%" in warnings[0] and "72.0%" in warnings[0]
    # the same figures on too few held-back cells prove nothing: that profile is used (as before)
    few = Profile("few", base, head, {"cells_held_back": 10, "accuracy": 0.6, "bundled_accuracy": 0.72}, 50)
    monkeypatch.setattr(window, "apply_settings", lambda settings: setattr(window, "applied", settings.profile))
    window.lab.adapted(few)
    assert window.applied == "few" and len(warnings) == 1


def verified_window(qtbot):
    """The main window after the 20 PBC fixture cells were classified and each verified by the technician."""
    from conftest import drop, make_window

    window = make_window(qtbot)
    with qtbot.waitSignal(window.batch_finished, timeout=60_000):
        drop(window, [PBC])
    for cell in list(window.case.cells):
        window.review.reclassify([cell.id], Path(cell.path).parent.name)
    paths, labels = window.lab.verified_cells()
    assert len(paths) == 20 and sorted(set(labels)) == sorted(path.name for path in PBC.iterdir() if path.is_dir())
    assert set(labels) <= set(window.classifier.classes)
    first = window.case.cells[0]
    window.review.reclassify([first.id], "smudge_cell")  # a category the model does not have: not a lesson for it
    assert len(window.lab.verified_cells()[0]) == 19
    window.review.reclassify([first.id], Path(first.path).parent.name)
    return window


def needs_tensorflow(test):
    """Fine-tuning runs TensorFlow (in this process or a child): 10-40 s a test, so these run in the slow step
    (`pytest -m slow`, which .ci/run runs after the README's test command)."""
    has_tensorflow = importlib.util.find_spec("tensorflow") is not None
    return pytest.mark.slow(pytest.mark.skipif(not has_tensorflow, reason="fine-tuning needs the 'train' extra")(test))


@needs_tensorflow
def test_gui_adapt_can_fine_tune_the_model(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from wbc_desktop.gui.lab_adapter import fine_tuning_available

    monkeypatch.setattr(QMessageBox, "information", lambda *args: None)
    window = verified_window(qtbot)
    assert fine_tuning_available(window.classifier)
    window.lab.fine_tune_steps = 3  # the wiring is under test here (a child process does the work), not the accuracy
    monkeypatch.setattr(window.lab, "choose_adaptation", lambda base: "finetune")
    with qtbot.waitSignal(window.model_ready, timeout=180_000):
        window.lab.adapt_to_lab()
    assert window.classifier.tuned is not None and window.classifier.profile.validation["head"] == "finetune"


@needs_tensorflow
def test_adapt_finetune_profile_carries_its_own_model(tmp_path, capsys):
    import numpy as np

    from wbc_desktop.core.images import load_image
    from wbc_desktop.inference.base import softmax
    from wbc_desktop.inference.lab_profile import load_with_profile
    from wbc_desktop.inference.litert import load_classifier

    verified = copy_verified_cells(tmp_path / "verified")
    out = tmp_path / "profiles" / "tuned"
    assert main(["adapt", str(verified), "--out", str(out), "--head", "finetune", "--steps", "4"]) == 0
    assert "held-back accuracy" in capsys.readouterr().out
    profile = load_profile(out)
    assert profile.validation["head"] == "finetune" and profile.validation["replay_cells"] == 200
    assert profile.validation["litert_keras_max_abs_prob_diff"] < 1e-4
    assert profile.model["folder"] == "model" and (out / "model" / "manifest.json").exists()

    base = load_classifier()
    classifier = load_with_profile(base, out)
    images = [load_image(path) for path in sorted(MORE_BCCD.rglob("*.jpg"))[:6]]
    probabilities, domain = classifier.analyse(images)
    assert profile.model["dihedral"] is True  # its calls average each cell's 8 flips and turns
    tuned_logits, _ = classifier.tuned.logits_and_features(images, dihedral=True)
    base_logits, _ = base.logits_and_features(images)
    robust_probabilities, app_domain = base.analyse(images)
    assert base.routed(app_domain).all()  # these BCCD cells look foreign: the app's calls are the robust model's
    tuned_probabilities = softmax(tuned_logits, profile.head.temperature)
    assert profile.model["robust_weight"] == 0.5 and "tuned_model_accuracy" in profile.validation
    assert np.allclose(probabilities, 0.5 * tuned_probabilities + 0.5 * robust_probabilities, atol=1e-6)
    assert not np.allclose(tuned_logits, base_logits, atol=1e-3)  # the calls come from the tuned model...
    assert not np.allclose(probabilities, robust_probabilities, atol=1e-3)  # ...not from the robust one alone...
    assert np.allclose(domain, app_domain)  # ...and the warning still measures against the training data
    # Cells like the training data get the tuned model's calls alone: the bundled model's are what it corrects.
    pbc_images = [load_image(path) for path in sorted(PBC.rglob("*.jpg"))[:4]]
    assert not base.routed(base.analyse(pbc_images)[1]).any()
    pbc_tuned, _ = classifier.tuned.logits_and_features(pbc_images, dihedral=True)
    pbc_calls = classifier.analyse(pbc_images)[0]
    assert np.allclose(pbc_calls, softmax(pbc_tuned, profile.head.temperature), atol=1e-6)
    assert main(["evaluate", str(verified), "--profile", str(out)]) == 0

    # A profile made before the blend (no robust_weight) keeps making its calls with the tuned model alone.
    saved = json.loads((out / "profile.json").read_text())
    saved["model"].pop("robust_weight")
    (out / "profile.json").write_text(json.dumps(saved))
    assert np.allclose(load_with_profile(base, out).analyse(images)[0], tuned_probabilities, atol=1e-6)
    saved["model"]["robust_weight"] = 1.5
    (out / "profile.json").write_text(json.dumps(saved))
    with pytest.raises(ProfileError, match="robust_weight"):
        load_with_profile(base, out)
    saved["model"]["robust_weight"] = 0.5
    (out / "profile.json").write_text(json.dumps(saved))

    tuned_manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert tuned_manifest["fine_tuned_from"] == base.sha256 and "domain" not in tuned_manifest
    tflite = out / "model" / "wbc_mobilenetv2.tflite"
    tflite.write_bytes(tflite.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ProfileError, match="fine-tuned model cannot be used"):
        load_with_profile(base, out)
    # A consistent swap (another model with a manifest to match) is caught by the hash the profile recorded.
    shutil.copy(base.model_dir / "wbc_mobilenetv2.tflite", tflite)
    (out / "model" / "manifest.json").write_text(json.dumps({**tuned_manifest, "sha256": base.sha256}))
    with pytest.raises(ProfileError, match="not the one it was made with"):
        load_with_profile(base, out)


def test_replay_cells_of_every_class_ship_with_the_model():
    from wbc_desktop.core.lab_profile import REPLAY_FILE, unpack_cells
    from wbc_desktop.inference.manifest import read_manifest
    from wbc_desktop.paths import model_store_dir

    manifest = read_manifest(model_store_dir())
    images, labels = unpack_cells(model_store_dir() / REPLAY_FILE)
    size = manifest.input_size
    assert images.shape == (len(labels), size, size, 3) and images.dtype.name == "uint8"
    assert {label: labels.count(label) for label in manifest.classes} == {c: 40 for c in manifest.classes}


def test_packed_cells_round_trip(tmp_path):
    import numpy as np

    from wbc_desktop.core.canonical import canonical_cell
    from wbc_desktop.core.images import load_image
    from wbc_desktop.core.lab_profile import pack_cells, unpack_cells

    cells = [canonical_cell(load_image(path), 96) for path in sorted(PBC.rglob("*.jpg"))[:2]]
    pack_cells(tmp_path / "cells.npz", cells, ["a", "b"])
    images, labels = unpack_cells(tmp_path / "cells.npz")
    assert labels == ["a", "b"] and images.shape == (2, 96, 96, 3)
    assert np.abs(images.astype(int) - np.stack(cells)).mean() < 3  # JPEG at quality 95: close, not exact


@needs_tensorflow
def test_gui_adapt_shows_progress_and_cancel_keeps_nothing(qtbot, monkeypatch):
    from wbc_desktop.inference.lab_profile import ProfileClassifier

    window = verified_window(qtbot)
    monkeypatch.setattr(window.lab, "choose_adaptation", lambda base: "finetune")
    window.lab.adapt_to_lab()
    dialog, task = window.lab.adapt_dialog, window.lab.task
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.maximum() == 150 and dialog.value() > 0, timeout=120_000)  # TensorFlow first
    assert "fine-tuning" in dialog.labelText() and dialog.value() < 150
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton

    (cancel,) = dialog.findChildren(QPushButton)
    with qtbot.waitSignal(task.signals.cancelled, timeout=3_000):  # the fine-tuning process is ended at once
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    assert window.lab.adapt_dialog is None and "cancelled" in window.statusBar().currentMessage()
    assert not isinstance(window.classifier, ProfileClassifier)
    assert not any(profiles_dir().glob("lab-*"))  # no profile, and no half-written model either


@needs_tensorflow
def test_adapt_finetune_skips_a_bad_file_and_refuses_an_unknown_class(tmp_path, capsys):
    verified = copy_verified_cells(tmp_path / "verified")
    (verified / "neutrophil" / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    out = tmp_path / "profiles" / "tuned"
    assert main(["adapt", str(verified), "--out", str(out), "--head", "finetune", "--steps", "2"]) == 0
    assert load_profile(out).cells == 40  # the 40 readable crops; the broken file did not stop the fit

    (verified / "blast").mkdir()
    shutil.copy(next((PBC / "neutrophil").glob("*.jpg")), verified / "blast" / "x.jpg")  # not a duplicate
    capsys.readouterr()
    assert main(["adapt", str(verified), "--out", str(tmp_path / "other"), "--head", "finetune"]) == 2
    assert "not among the model's classes" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@needs_tensorflow
def test_the_lab_models_fine_tune_grows_its_steps_and_chooses_its_blend_on_held_back_cells(tmp_path):
    from wbc_desktop.paths import model_store_dir
    from wbc_desktop.training.finetune import FineTuneConfig, build_tuned_profile, steps_for

    assert [steps_for(n) for n in (20, 100, 200, 1000)] == [150, 225, 450, 600]
    verified = copy_verified_cells(tmp_path / "verified")
    paths = sorted(verified.rglob("*.jpg"))
    labels = [p.parent.name for p in paths]
    config = FineTuneConfig(steps=3, robust_weight=None)  # the window's lab model (steps cut for the test)
    profile = build_tuned_profile(model_store_dir(), paths, labels, "lab-v1", tmp_path / "lab-v1", config=config)
    tried = profile.validation["blends_tried"]
    assert set(tried) == {"0.0", "0.5"}
    chosen = profile.model["robust_weight"]
    assert tried[str(chosen)] == max(tried.values()) == profile.validation["accuracy"]
    assert profile.validation["fine_tune"]["robust_weight"] == chosen
