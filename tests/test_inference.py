"""The LiteRT classifier over the bundled model, and its refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wbc_desktop.core.images import load_image
from wbc_desktop.inference.base import Classifier, softmax
from wbc_desktop.inference.litert import LiteRTClassifier
from wbc_desktop.inference.manifest import ModelError, read_manifest
from wbc_desktop.paths import model_store_dir


@pytest.fixture
def model_copy(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    manifest = read_manifest(model_store_dir())
    for name in ("manifest.json", manifest.model_file):
        shutil.copy(model_store_dir() / name, target / name)
    if (model_store_dir() / "robust").is_dir():  # the stain-robust model lives inside the model's folder
        shutil.copytree(model_store_dir() / "robust", target / "robust")
    return target, manifest


def test_bundled_model_loads_and_predicts_probabilities(classifier, pbc_images):
    assert isinstance(classifier, Classifier)
    images = [load_image(path) for path in pbc_images[:6]]
    probabilities = classifier.predict(images)
    assert probabilities.shape == (6, len(classifier.classes))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()


def test_batch_and_single_predictions_agree(classifier, pbc_images):
    images = [load_image(path) for path in pbc_images[:5]]
    together = classifier.predict(images)
    alone = np.concatenate([classifier.predict([image]) for image in images])
    assert np.abs(together - alone).max() < 1e-5


def test_temperature_is_applied(classifier, pbc_images):
    logits, features = classifier.logits_and_features([load_image(pbc_images[0])])
    expected = softmax(logits, classifier.temperature)
    assert np.allclose(classifier.predict([load_image(pbc_images[0])]), expected, atol=1e-6)
    assert features is not None and features.shape == (1, classifier.feature_size)


def test_missing_model_file_is_refused(model_copy):
    folder, manifest = model_copy
    (folder / manifest.model_file).unlink()
    with pytest.raises(ModelError, match="model file is missing"):
        LiteRTClassifier(folder)


def test_altered_model_file_is_refused(model_copy):
    folder, manifest = model_copy
    content = bytearray((folder / manifest.model_file).read_bytes())
    content[len(content) // 2] ^= 0xFF
    (folder / manifest.model_file).write_bytes(bytes(content))
    with pytest.raises(ModelError, match="does not match its manifest"):
        LiteRTClassifier(folder)


def test_truncated_model_file_is_refused(model_copy):
    folder, manifest = model_copy
    path = folder / manifest.model_file
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="does not match its manifest"):
        LiteRTClassifier(folder)


def test_manifest_with_wrong_class_count_is_refused(model_copy):
    folder, _ = model_copy
    data = json.loads((folder / "manifest.json").read_text())
    data["classes"] = data["classes"][:4]
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="manifest names 4 classes"):
        LiteRTClassifier(folder)


def test_manifest_cannot_point_outside_the_store(model_copy):
    folder, _ = model_copy
    data = json.loads((folder / "manifest.json").read_text())
    data["model_file"] = "../elsewhere/model.tflite"
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="inside the model folder"):
        LiteRTClassifier(folder)


def test_missing_or_broken_manifest_is_refused(model_copy):
    folder, _ = model_copy
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot be read"):
        LiteRTClassifier(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        LiteRTClassifier(folder)


def test_dihedral_views_are_the_eight_flips_and_turns_and_average_back():
    from wbc_desktop.inference.base import dihedral_views, mean_over_views

    batch = np.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    views = dihedral_views(batch)
    assert views.shape == (16, 3, 3, 1)
    for image in range(2):
        own = {views[v * 2 + image].tobytes() for v in range(8)}
        expected = {np.rot90(m, k).tobytes() for m in (batch[image], batch[image][:, ::-1]) for k in range(4)}
        assert own == expected  # all 8 symmetries of the square, each once
    outputs = np.stack([np.full(3, float(v * 10 + i)) for v in range(8) for i in range(2)])
    assert np.allclose(mean_over_views(outputs, 2), [[35.0] * 3, [36.0] * 3])
