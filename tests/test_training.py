"""Training end to end on a tiny subset (CI): the export loads in LiteRT and agrees with Keras."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import PBC

from wbc_desktop.core.labelled import load_labelled_set, stratified_split

pytest.importorskip("tensorflow")


def test_stratified_split_is_seeded_and_keeps_every_class():
    labels = ["a"] * 50 + ["b"] * 10 + ["c"] * 4
    first = stratified_split(labels, 0.2, 0.1, seed=3)
    assert first == stratified_split(labels, 0.2, 0.1, seed=3)
    assert first != stratified_split(labels, 0.2, 0.1, seed=4)
    for label in "abc":
        splits = {s for s, lab in zip(first, labels, strict=True) if lab == label}
        assert splits == {"train", "val", "test"}
    assert sum(1 for s, lab in zip(first, labels, strict=True) if lab == "a" and s == "test") == 10


def test_class_folders_in_any_case_and_duplicates_removed(tmp_path):
    for folder in ("NEUTROPHIL", "Lymphocyte"):
        (tmp_path / folder).mkdir()
    sources = sorted((PBC / "neutrophil").glob("*.jpg"))
    shutil.copy(sources[0], tmp_path / "NEUTROPHIL" / "a.jpg")
    shutil.copy(sources[0], tmp_path / "NEUTROPHIL" / "copy_of_a.jpg")  # byte-identical
    shutil.copy(sources[1], tmp_path / "NEUTROPHIL" / "b.jpg")
    shutil.copy(sorted((PBC / "lymphocyte").glob("*.jpg"))[0], tmp_path / "Lymphocyte" / "c.jpg")
    data = load_labelled_set(tmp_path)
    assert data.classes == ["lymphocyte", "neutrophil"]
    assert data.duplicates_removed == 1 and len(data.paths) == 3


def tiny_train_command(data_dir, out) -> list[str]:
    """`wbc-desktop train` on the 20 fixture cells (two train, one val, one test per class), 1 epoch at 48 px."""
    split_csv = out.parent / "split.csv"
    rows = ["path,label,split"]
    for folder in sorted(data_dir.iterdir()):
        for index, path in enumerate(sorted(folder.glob("*.jpg"))):
            rows.append(f"{folder.name}/{path.name},{folder.name},{['train', 'train', 'val', 'test'][index]}")
    split_csv.write_text("\n".join(rows) + "\n")
    return ["train", str(data_dir), "--split-csv", str(split_csv), "--image-size", "48", "--alpha", "0.35",
            "--batch-size", "4", "--out", str(out), "--precise-bn-batches", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny training run (about half a minute) for the tests that read it; each copies it before changing it."""
    from wbc_desktop.cli import main

    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main([*tiny_train_command(PBC, out), "--epochs", "1"]) == 0
    return out


@pytest.mark.slow
def test_train_tiny_then_litert_matches_keras(tiny_run):
    import keras

    from wbc_desktop.inference.litert import LiteRTClassifier
    from wbc_desktop.training.export import AGREEMENT_TOLERANCE

    out = tiny_run
    bundle = out / "bundle"
    for name in (
        "manifest.json",
        "wbc_mobilenetv2.tflite",
        "wbc_mobilenetv2.keras",
        "metrics.json",
        "confusion_matrix.png",
        "training_curves.png",
        "MODEL_CARD.md",
    ):
        assert (bundle / name).is_file(), name
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert metrics["litert_keras_max_abs_prob_diff"] <= AGREEMENT_TOLERANCE
    assert metrics["test"]["support"] == 5

    classifier = LiteRTClassifier(bundle)
    model = keras.models.load_model(bundle / "wbc_mobilenetv2.keras")
    from wbc_desktop.core.canonical import canonical_cell
    from wbc_desktop.core.images import load_image
    from wbc_desktop.inference.base import softmax

    assert classifier.manifest.view == "canonical"  # the default: framed and stain-normalised cells
    images = [load_image(path) for path in sorted(PBC.glob("*/*.jpg"))[:3]]
    images.append(np.asarray(np.random.default_rng(0).integers(0, 255, (60, 70, 3)), np.uint8))
    batch = np.stack([canonical_cell(image, 48) for image in images]).astype(np.float32)
    keras_probs = softmax(np.asarray(model.predict(batch, verbose=0)[0]), classifier.temperature)
    assert np.abs(classifier.predict(images) - keras_probs).max() <= AGREEMENT_TOLERANCE


def test_augmentations_keep_shape_range_and_the_cell_in_the_middle():
    pytest.importorskip("keras")
    from wbc_desktop.training.model_card import _view_lines
    from wbc_desktop.training.train import AUGMENTATIONS

    images = np.full((6, 64, 64, 3), 230, np.uint8)
    images[:, 24:40, 24:40] = (90, 40, 130)  # a dark "nucleus" in the middle
    rng = np.random.default_rng(0)
    for name, augment in AUGMENTATIONS.items():
        assert f"({name})" in _view_lines({"augment": name, "view": "canonical"})[-1]  # the model card says it
        out = augment(images, rng)
        assert out.shape == images.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 255.0
        centre, corner = out[:, 28:36, 28:36].mean(axis=(1, 2, 3)), out[:, :4, :4].mean(axis=(1, 2, 3))
        assert (centre < corner).all()  # zoom and shifts never push the cell out of the middle


def test_robust_ensemble_averages_members_over_the_eight_views(tmp_path):
    """The exported ensemble's output is log of the mean softmax over members and the app's 8 dihedral views."""
    pytest.importorskip("tensorflow")
    import keras

    from wbc_desktop.inference.base import dihedral_views, mean_over_views, softmax
    from wbc_desktop.training.export import litert_outputs, to_tflite
    from wbc_desktop.training.robust import build_ensemble

    def member() -> keras.Model:  # small, and orientation-sensitive (Flatten), so every view counts
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(4, 3, strides=4)(keras.layers.Rescaling(1 / 64.0)(inputs))
        features = keras.layers.Flatten()(x)
        return keras.Model(inputs, [keras.layers.Dense(5)(features), features])

    keras.utils.set_random_seed(3)
    members = [member() for _ in range(2)]
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    expected = np.mean(
        [mean_over_views(softmax(np.asarray(m(dihedral_views(images))[0])), len(images)) for m in members], axis=0
    )
    ensemble = build_ensemble(members, 32, 5)
    assert np.allclose(softmax(np.asarray(ensemble(images))), expected, atol=1e-5)
    for weights, tolerance in (("float32", 1e-5), ("float16", 5e-3), ("int8", 3e-2)):
        logits, features = litert_outputs(to_tflite(ensemble, weights), images, 5)
        assert features is None  # the ensemble has one output: its calls
        litert = softmax(logits)
        assert np.abs(litert - expected).max() < tolerance, weights
    # not a trivial average: one member on the upright view alone answers otherwise
    alone = softmax(np.asarray(members[0](images)[0]))
    assert np.abs(alone - expected).max() > 0.05


def test_eosin_hue_jitter_changes_the_hue_of_eosin_only():
    """``labs-hue``: the eosin stain's factor differs per channel, the nuclear stain's does not."""
    from wbc_desktop.core.canonical import WHITE
    from wbc_desktop.training.augment import stain_jitter

    pink = np.zeros((8, 8, 3), np.uint8) + np.array([200, 120, 150], np.uint8)  # eosin-like: absorbs G and B
    ratios = set()
    for seed in range(6):
        out = stain_jitter(pink, np.random.default_rng(seed), eosin_hue=0.3).astype(float)
        density = -np.log((out[0, 0] + 1) / (WHITE + 1))
        ratios.add(round(float(density[1] / density[2]), 3))
        plain = stain_jitter(pink, np.random.default_rng(seed)).astype(float)
        plain_density = -np.log((plain[0, 0] + 1) / (WHITE + 1))
        original = -np.log((pink[0, 0] + 1.0) / (WHITE + 1))
        # without hue jitter the channels keep their proportions (up to rounding to uint8)
        assert abs(plain_density[1] / plain_density[2] - original[1] / original[2]) < 0.05
    assert len(ratios) > 3  # with it, the green/blue proportion (the hue) varies


@pytest.mark.slow
def test_export_only_with_test_time_views_and_a_warm_start_at_another_size(tiny_run, tmp_path):
    """Exported again with 2 test-time views, the bundle's calls are the mean of Keras's logits over the cell and
    its upside-down copy; and a model trained at one size warm-starts a model at another, weight for weight."""
    import keras

    from wbc_desktop.cli import main
    from wbc_desktop.core.canonical import canonical_cell
    from wbc_desktop.core.images import load_image
    from wbc_desktop.inference.base import dihedral_views, mean_over_views, softmax
    from wbc_desktop.inference.litert import LiteRTClassifier
    from wbc_desktop.training.model import build_model
    from wbc_desktop.training.train import warm_start

    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)  # exported again below: the module's run stays as trained
    assert main([*tiny_train_command(PBC, out), "--export-only", "--test-time-views", "2"]) == 0
    bundle = out / "bundle"
    classifier = LiteRTClassifier(bundle)
    assert classifier.test_time_views == 2
    assert json.loads((bundle / "metrics.json").read_text())["test_time_views"] == 2
    model = keras.models.load_model(bundle / "wbc_mobilenetv2.keras")
    images = [load_image(path) for path in sorted(PBC.glob("*/*.jpg"))[:3]]
    batch = np.stack([canonical_cell(image, 48) for image in images]).astype(np.float32)
    keras_logits = mean_over_views(np.asarray(model.predict(dihedral_views(batch, 2), verbose=0)[0]), 3, 2)
    assert np.abs(classifier.predict(images) - softmax(keras_logits, classifier.temperature)).max() <= 1e-4

    larger = build_model(5, 64, 0.35)
    warm_start(larger, out / "trained.keras", sorted(folder.name for folder in PBC.iterdir()))
    source = keras.models.load_model(out / "trained.keras", compile=False)
    for mine, theirs in zip(larger.layers, source.layers, strict=True):
        for a, b in zip(mine.get_weights(), theirs.get_weights(), strict=True):
            assert np.array_equal(a, b)


def test_class_weightings_pull_rare_classes_up_by_their_power():
    from wbc_desktop.training.train import class_weights

    targets = np.array([0] * 90 + [1] * 10)  # 9:1, as neutrophils to a rare class
    balanced = class_weights(targets, 2)
    assert balanced == pytest.approx({0: 100 / (2 * 90), 1: 100 / (2 * 10)})
    root = class_weights(targets, 2, "sqrt")
    assert root == pytest.approx({c: balanced[c] ** 0.5 for c in balanced})
    between = class_weights(targets, 2, "three-quarters")
    assert between == pytest.approx({c: balanced[c] ** 0.75 for c in balanced})
    assert root[1] < between[1] < balanced[1]
    assert class_weights(targets, 2, "none") == {0: 1.0, 1: 1.0}
    with pytest.raises(ValueError, match="class weighting"):
        class_weights(targets, 2, "inverse")


def test_train_command_passes_the_class_weighting_to_the_config(monkeypatch, tmp_path):
    import wbc_desktop.training.train as train_module
    from wbc_desktop.cli import main

    seen = {}

    def fake_fit(config, **_):
        seen["weighting"] = config.class_weighting
        raise SystemExit(0)

    monkeypatch.setattr(train_module, "fit", fake_fit)
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path), "--class-weights", "sqrt", "--out", str(tmp_path / "out")])
    assert seen == {"weighting": "sqrt"}


def test_train_command_offers_exactly_the_trainer_class_weightings():
    # the CLI lists them itself so that building its parser never imports TensorFlow
    from wbc_desktop.cli import build_parser
    from wbc_desktop.training.train import CLASS_WEIGHTINGS

    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    option = next(a for a in train._actions if a.option_strings == ["--class-weights"])
    assert tuple(option.choices) == tuple(CLASS_WEIGHTINGS)


@pytest.mark.slow
def test_shift_logits_writes_the_undone_prior_into_the_last_bias(tiny_run, tmp_path, monkeypatch):
    """scripts/shift_logits.py: the copy's logits are the run's plus the chosen share of -log(class weight)."""
    import sys
    from pathlib import Path

    import keras

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import shift_logits

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    # an uneven training split (3, 2, 2, 2, 1 cells), so that balanced weights differ between classes
    classes = sorted(folder.name for folder in PBC.iterdir())
    rows, train_counts = ["path,label,split"], []
    for position, label in enumerate(classes):
        roles = {0: ["train", "train", "train", "test"], 4: ["train", "val", "val", "test"]}.get(
            position, ["train", "train", "val", "test"]
        )
        for path, role in zip(sorted((PBC / label).glob("*.jpg")), roles, strict=False):
            rows.append(f"{label}/{path.name},{label},{role}")
        train_counts.append(roles.count("train"))
    (tmp_path / "uneven.csv").write_text("\n".join(rows) + "\n")
    record = json.loads((run / "training.json").read_text())
    record["config"]["split_csv"] = str(tmp_path / "uneven.csv")
    (run / "training.json").write_text(json.dumps(record))

    monkeypatch.setattr(sys, "argv", ["shift_logits", str(run), str(tmp_path / "shifted"), "--fraction", "0.5"])
    shift_logits.main()

    counts = np.array(train_counts, dtype=float)
    expected = -0.5 * np.log(counts.sum() / (len(classes) * counts))
    written = json.loads((tmp_path / "shifted" / "training.json").read_text())["logit_shift"]
    assert written["prior_fraction"] == 0.5
    assert list(written["shift"].values()) == pytest.approx(expected, abs=1e-5)
    batch = np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 3)).astype(np.float32)
    before = keras.models.load_model(run / "trained.keras").predict(batch, verbose=0)[0]
    after = keras.models.load_model(tmp_path / "shifted" / "trained.keras").predict(batch, verbose=0)[0]
    assert np.abs(after - before - expected).max() < 1e-4
