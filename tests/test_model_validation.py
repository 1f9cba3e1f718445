"""A model bundle or lab profile with settings that would make wrong calls is refused with a clear message
(issue: a temperature of 0 or NaN labelled every cell *basophil* with confidence NaN; swapped class lists and a
reordered profile ran with exit 0 and wrong calls)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wbc_desktop.cli import main
from wbc_desktop.core.lab_profile import Head, Profile, ProfileError, load_profile
from wbc_desktop.inference.lab_profile import ProfileClassifier
from wbc_desktop.inference.litert import LiteRTClassifier, load_classifier
from wbc_desktop.inference.manifest import ModelError, read_manifest
from wbc_desktop.paths import model_store_dir


@pytest.fixture
def bundle(tmp_path):
    """The bundled model (with its stain-robust model) in a folder the test may break."""
    target = tmp_path / "model"
    shutil.copytree(model_store_dir(), target, ignore=shutil.ignore_patterns("*.keras", "*.npz", "*.png"))
    return target


def edit(path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("temperature", 0),
        ("temperature", -1.0),
        ("temperature", float("nan")),
        ("temperature", 1e9),
        ("review_threshold", 0),
        ("review_threshold", 1.5),
        ("review_threshold", float("nan")),
    ],
)
def test_out_of_range_or_non_finite_settings_are_refused(bundle, setting, value):
    edit(bundle / "manifest.json", **{setting: value})
    with pytest.raises(ModelError, match=f"{setting} must be a number above"):
        read_manifest(bundle)


def test_swapped_or_duplicate_classes_are_refused_in_either_manifest(bundle, capsys):
    classes = read_manifest(bundle).classes
    swapped = [classes[1], classes[0], *classes[2:]]
    edit(bundle / "manifest.json", classes=swapped)
    with pytest.raises(ModelError, match="not in the order the model was trained in"):
        LiteRTClassifier(bundle)
    assert main(["count", str(bundle), "--model", str(bundle)]) == 1  # the CLI says so and fails
    assert "not in the order the model was trained in" in capsys.readouterr().err
    edit(bundle / "manifest.json", classes=[classes[0], *classes[:-1]])
    with pytest.raises(ModelError, match="named twice"):
        LiteRTClassifier(bundle)
    edit(bundle / "manifest.json", classes=list(classes))
    robust = bundle / "robust" / "manifest.json"
    edit(robust, classes=swapped)  # the stain-robust model's list: its manifest is hashed in the bundle's
    with pytest.raises(ModelError, match="manifest is not the one this model was shipped with"):
        LiteRTClassifier(bundle)


@pytest.mark.parametrize("folder", ["..", ".", "", "../robust", "/tmp"])
def test_a_robust_model_folder_outside_the_bundle_is_refused(bundle, folder):
    data = json.loads((bundle / "manifest.json").read_text())
    data["robust_model"]["folder"] = folder
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="must be a folder inside the model's"):
        LiteRTClassifier(bundle)


def test_a_robust_entry_with_a_non_finite_route_is_refused(bundle):
    data = json.loads((bundle / "manifest.json").read_text())
    data["robust_model"]["route_above"] = float("nan")
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="route_above must be a number"):
        LiteRTClassifier(bundle)


def test_a_profile_with_the_classes_reordered_is_refused():
    base = load_classifier()
    classes = list(base.classes)
    size = base.feature_size
    identity = {"name": base.name, "version": base.version, "sha256": base.sha256}
    head = Head(
        [classes[1], classes[0], *classes[2:]],
        np.zeros(size),
        np.ones(size),
        np.zeros((size, len(classes))),
        np.zeros(len(classes)),
        base_weight=1.0,
    )
    with pytest.raises(ProfileError, match="not the model's"):
        ProfileClassifier(base, Profile("reordered", identity, head))
    ProfileClassifier(base, Profile("ordered", identity, Head(classes, *head_arrays(size, len(classes)))))


def head_arrays(size: int, count: int):
    return np.zeros(size), np.ones(size), np.zeros((size, count)), np.zeros(count)


@pytest.mark.parametrize(
    "change",
    [{"temperature": 0.0}, {"temperature": float("nan")}, {"std": "zeros"}, {"weights": "nan"}, {"base_weight": -1}],
)
def test_a_profile_with_non_finite_or_out_of_range_values_is_refused(tmp_path, change):
    head = Head(["a", "b"], *head_arrays(3, 2))
    Profile("x", {"name": "m", "version": "1", "sha256": "0" * 64}, head).save(tmp_path)
    data = json.loads((tmp_path / "profile.json").read_text())
    for key, value in change.items():
        if value == "zeros":
            data[key] = [0.0] * len(data[key])
        elif value == "nan":
            data[key] = [[float("nan")] * 2 for _ in data[key]]
        else:
            data[key] = value
    (tmp_path / "profile.json").write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path)


def test_deeply_nested_json_is_a_clear_message_not_a_crash(bundle, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    (bundle / "manifest.json").write_text(deep)
    with pytest.raises(ModelError, match="nested too deeply"):
        read_manifest(bundle)
    (tmp_path / "profile.json").write_text(deep)
    with pytest.raises(ProfileError, match="nested too deeply"):
        load_profile(tmp_path)


def test_a_folder_nested_too_deeply_is_reported_and_the_rest_is_found(tmp_path):
    from wbc_desktop.core.images import MAX_FOLDER_DEPTH, iter_discover

    deep = tmp_path / "deep"
    folder = deep
    for _ in range(MAX_FOLDER_DEPTH + 5):
        folder = folder / "x"
    folder.mkdir(parents=True)
    (folder / "lost.png").write_bytes(b"")
    (deep / "found.png").write_bytes(b"")
    found = list(iter_discover([deep]))
    assert deep / "found.png" in found
    assert any(isinstance(item, tuple) and "nested more than" in item[1] for item in found)


def test_the_bundled_model_a_profile_and_the_fake_meet_one_classifier_contract():
    """Callers read domain, profile, base, model_dir, has_robust_model and identity directly: every classifier
    has them (runtime_checkable checks presence), and the identity is the same three fields everywhere."""
    from fakes import FakeClassifier

    from wbc_desktop.inference.base import Classifier

    base = load_classifier()
    size, classes = base.feature_size, list(base.classes)
    profiled = ProfileClassifier(base, Profile("lab", base.identity, Head(classes, *head_arrays(size, len(classes)))))
    for classifier in (base, profiled, FakeClassifier()):
        assert isinstance(classifier, Classifier)
        assert set(classifier.identity) == {"name", "version", "sha256"}
    assert base.base is base and profiled.base is base and profiled.profile.name == "lab"
    assert profiled.identity["sha256"] == base.sha256 and profiled.has_robust_model == base.has_robust_model


def test_a_barely_trained_models_temperature_stays_one_its_manifest_accepts():
    """A 1-epoch smoke model's near-chance logits fitted a temperature of 20 (the old search bound), which its own
    manifest check then refused (the slow training test failed on it)."""
    import numpy as np

    from wbc_desktop.core.metrics import MAX_TEMPERATURE, fit_temperature

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 200)
    noise = rng.normal(size=(200, 5))  # logits that say nothing about the targets: NLL falls as T grows
    temperature = fit_temperature(noise, targets)
    assert 0.9 * MAX_TEMPERATURE <= temperature <= MAX_TEMPERATURE
    confident = np.eye(5)[targets] * 5.0 + 0.1 * noise  # a good model's logits calibrate near 1, not at the bound
    assert fit_temperature(confident, targets) < MAX_TEMPERATURE / 2
