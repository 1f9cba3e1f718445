"""The stain-robust ensemble as the app runs it: float weights and fewer views, edited in memory at load time."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import BCCD_CROPS, FIXTURES

from wbc_desktop.core.images import discover, load_image
from wbc_desktop.inference.base import dihedral_views

ROBUST_FILE = "wbc_robust_ensemble.tflite"


def _robust_dir():
    from wbc_desktop.paths import model_store_dir

    return model_store_dir() / "robust"


def _interpreter(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content, num_threads=1)


def _outputs(content: bytes, batch: np.ndarray) -> np.ndarray:
    interpreter = _interpreter(content)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


@pytest.fixture(scope="module")
def robust_views() -> np.ndarray:
    from wbc_desktop.core.canonical import model_view

    paths = discover([BCCD_CROPS, FIXTURES / "bccd_crops_more"]).images
    return np.stack([model_view(load_image(path), 64, "canonical") for path in paths])


def test_float_weights_make_the_same_calls_as_the_stored_int8_weights(robust_views):
    from wbc_desktop.inference.graph_edit import runtime_model

    stored = (_robust_dir() / ROBUST_FILE).read_bytes()
    edited = runtime_model(stored)
    assert len(edited) > 3 * len(stored)  # every int8 weight is now a float32
    before, after = _outputs(stored, robust_views), _outputs(edited, robust_views)
    assert (before.argmax(axis=1) == after.argmax(axis=1)).all()
    # the hybrid kernels quantise each activation on the fly; the float kernels do not: close, not equal
    assert np.abs(np.exp(before) - np.exp(after)).max() < 0.05
    assert runtime_model(edited) is edited, "a float model is returned as it is"


@pytest.mark.parametrize("views", [4, 8])
def test_the_ensemble_averages_its_first_views_of_each_cell(robust_views, views):
    """exp(output) is the members' mean probability over the kept views: exactly the mean of the one-view
    ensemble's probabilities over those views of the cell, in the order the graph makes them."""
    from wbc_desktop.inference.graph_edit import runtime_model

    stored = (_robust_dir() / ROBUST_FILE).read_bytes()
    cells = robust_views[:3]
    one_view = np.exp(_outputs(runtime_model(stored, 1), dihedral_views(cells)))  # view-major: 8 x cells
    expected = one_view.reshape(8, len(cells), -1)[:views].mean(axis=0)
    assert np.allclose(np.exp(_outputs(runtime_model(stored, views), cells)), expected, atol=1e-5)


def test_a_model_that_is_not_an_ensemble_of_views_is_refused():
    from wbc_desktop.inference.graph_edit import GraphEditError, runtime_model
    from wbc_desktop.paths import model_store_dir

    bundled = (model_store_dir() / "wbc_mobilenetv2.tflite").read_bytes()
    assert runtime_model(bundled) is bundled, "float weights, no views asked: nothing to edit"
    with pytest.raises(GraphEditError, match="not an ensemble over 8 views"):
        runtime_model(bundled, 4)
    with pytest.raises(GraphEditError, match="views must be 1 to 8"):
        runtime_model(bundled, 0)


def test_the_manifest_chooses_the_views_and_a_bad_number_is_refused(tmp_path):
    from wbc_desktop.inference.litert import LiteRTClassifier
    from wbc_desktop.inference.manifest import ModelError
    from wbc_desktop.paths import model_store_dir

    bundle = tmp_path / "model"
    shutil.copytree(model_store_dir(), bundle, ignore=shutil.ignore_patterns("*.keras", "*.npz", "*.png"))
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["robust_model"]["views"] == 4  # docs/figures.md: why 4
    assert LiteRTClassifier(bundle).robust.views == 4
    for bad in (0, 9, "four", 4.5):
        manifest["robust_model"]["views"] = bad
        manifest_path.write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match="views"):
            LiteRTClassifier(bundle)


def test_framing_once_gives_the_same_calls_as_framing_for_each_model(classifier):
    """The pipeline frames each cell once and makes both models' views from that frame."""
    from wbc_desktop.core.pipeline import classify_iter

    paths = discover([BCCD_CROPS]).images
    images = [load_image(path) for path in paths]
    frames = classifier.frames_of(images)
    assert frames is not None
    assert np.array_equal(classifier.prepare(images, frames), classifier.prepare(images))
    assert np.array_equal(classifier.robust.prepare(images, frames), classifier.robust.prepare(images))
    probabilities, scores = classifier.analyse(images)
    assert classifier.routed(scores).all(), "the fixture's BCCD crops all look foreign"
    assert np.array_equal(probabilities, classifier.robust_probabilities(images))
    counted = [result.probabilities for result in classify_iter(paths, classifier)]
    assert np.allclose([[row[name] for name in classifier.classes] for row in counted], probabilities)
