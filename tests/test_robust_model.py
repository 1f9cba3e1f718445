"""The stain-robust model beside the bundled one: which cells it classifies, and refusals of an altered one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BCCD_CROPS, FIXTURES, PBC

from wbc_desktop.cli import main

MORE_BCCD = FIXTURES / "bccd_crops_more"


def _labelled_crops(folder: Path) -> tuple[list, list[str]]:
    from wbc_desktop.core.images import load_image

    paths = sorted(folder.rglob("*.jpg"))
    return [load_image(path) for path in paths], [path.parent.name for path in paths]


def test_foreign_cells_are_classified_by_the_stain_robust_model(classifier, pbc_images):
    import numpy as np

    from wbc_desktop.core.images import load_image
    from wbc_desktop.inference.base import softmax

    assert classifier.robust is not None, "the bundled model ships with its stain-robust model"
    bccd, labels = _labelled_crops(BCCD_CROPS)
    pbc = [load_image(path) for path in pbc_images]
    probabilities, scores = classifier.analyse(bccd + pbc)
    routed = classifier.routed(scores)
    assert routed[: len(bccd)].mean() >= 0.9 and not routed[len(bccd) :].any()
    foreign = np.flatnonzero(routed)
    # the stain-robust model's columns under the model's own classes (it names five of them)
    theirs = classifier.robust.predict([(bccd + pbc)[i] for i in foreign])
    expected = np.zeros((len(foreign), len(classifier.classes)))
    for column, name in enumerate(classifier.robust.classes):
        expected[:, classifier.classes.index(name)] = theirs[:, column]
    assert np.allclose(probabilities[foreign], expected)
    base_logits, _ = classifier.logits_and_features(pbc)
    assert np.allclose(probabilities[len(bccd) :], softmax(base_logits, classifier.temperature))
    # On another lab's cells the routed calls are the better ones (the bundled model alone: 0.45 on all 351).
    classes = list(classifier.classes)
    targets = np.array([classes.index(label) for label in labels])
    routed_right = (probabilities[: len(bccd)].argmax(axis=1) == targets).sum()
    base_right = (classifier.logits_and_features(bccd)[0].argmax(axis=1) == targets).sum()
    assert routed_right > base_right


def test_count_json_says_which_cells_the_stain_robust_model_classified(tmp_path, capsys):
    out = tmp_path / "count.json"
    assert main(["count", str(BCCD_CROPS / "neutrophil"), str(PBC / "neutrophil"), "--json", str(out)]) == 0
    cells = json.loads(out.read_text())["cells"]
    by_lab = {"bccd": [c for c in cells if "bccd" in c["path"]], "pbc": [c for c in cells if "pbc" in c["path"]]}
    assert by_lab["bccd"] and by_lab["pbc"]
    assert all(c.get("classified_by") == "stain-robust model" for c in by_lab["bccd"])
    assert all(c.get("classified_by") == "bundled model" for c in by_lab["pbc"])


def _model_store_copy(tmp_path) -> Path:
    from wbc_desktop.paths import model_store_dir

    target = tmp_path / "model"
    shutil.copytree(model_store_dir(), target, ignore=shutil.ignore_patterns("*.keras", "*.npz", "*.png"))
    return target


def test_altered_stain_robust_model_is_refused(tmp_path):
    from wbc_desktop.inference.litert import LiteRTClassifier
    from wbc_desktop.inference.manifest import ModelError, read_manifest

    folder = _model_store_copy(tmp_path)
    robust = folder / "robust"
    model_file = robust / read_manifest(robust).model_file
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0xFF
    model_file.write_bytes(bytes(content))
    with pytest.raises(ModelError, match=r"stain-robust model .*does not match its manifest"):
        LiteRTClassifier(folder)


def test_stain_robust_model_swapped_with_its_manifest_is_refused(tmp_path):
    from wbc_desktop.inference.litert import LiteRTClassifier
    from wbc_desktop.inference.manifest import ModelError, read_manifest, sha256_bytes

    folder = _model_store_copy(tmp_path)
    robust = folder / "robust"
    model_file = robust / read_manifest(robust).model_file
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0x01  # a weight changed, the file still loads
    model_file.write_bytes(bytes(content))
    manifest = json.loads((robust / "manifest.json").read_text())
    manifest["sha256"] = sha256_bytes(bytes(content))
    (robust / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not the one this model was shipped with"):
        LiteRTClassifier(folder)
    shutil.rmtree(robust)
    with pytest.raises(ModelError, match=r"stain-robust model .*manifest not found"):
        LiteRTClassifier(folder)
