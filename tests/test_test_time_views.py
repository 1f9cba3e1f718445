"""A model whose manifest asks for test-time views: its calls average that many flips and turns of each cell,
exactly as its export computed them, and a bad count is refused at load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES

from wbc_desktop.core.images import discover, load_image
from wbc_desktop.inference.base import DIHEDRAL_VIEWS, dihedral_views
from wbc_desktop.inference.manifest import ModelError


def _store_with(tmp_path, **entries):
    from wbc_desktop.paths import model_store_dir

    store = tmp_path / "store"
    shutil.copytree(model_store_dir(), store, ignore=shutil.ignore_patterns("candidates", "*.keras", "*.npz"))
    manifest = json.loads((store / "manifest.json").read_text())
    manifest.update(entries)
    (store / "manifest.json").write_text(json.dumps(manifest))
    return store


@pytest.fixture(scope="module")
def cells() -> list[np.ndarray]:
    return [load_image(path) for path in discover([FIXTURES / "pbc"]).images[:6]]


def test_the_first_views_are_the_first_of_the_eight():
    batch = np.arange(2 * 3 * 3 * 1).reshape(2, 3, 3, 1)
    every = dihedral_views(batch)
    for count in range(1, DIHEDRAL_VIEWS + 1):
        assert np.array_equal(dihedral_views(batch, count), every[: count * len(batch)])
    assert len({every[i * 2].tobytes() for i in range(DIHEDRAL_VIEWS)}) == DIHEDRAL_VIEWS  # 8 different views


def test_calls_average_the_manifests_views_and_features_stay_those_of_the_cell_as_it_is(tmp_path, cells):
    from wbc_desktop.inference.litert import LiteRTClassifier

    plain = LiteRTClassifier(_store_with(tmp_path / "a", test_time_views=1))
    assert plain.test_time_views == 1
    averaged = LiteRTClassifier(_store_with(tmp_path / "b", test_time_views=4))
    assert averaged.test_time_views == 4
    batch = plain.prepare(cells)
    one_view_logits = [plain.outputs_of(view)[0] for view in np.split(dihedral_views(batch, 4), 4)]
    logits, features = averaged.outputs_of(batch)
    assert np.allclose(logits, np.mean(one_view_logits, axis=0), atol=1e-4)
    assert not np.allclose(logits, one_view_logits[0], atol=1e-3), "the views must change the logits"
    assert np.allclose(features, plain.outputs_of(batch)[1], atol=1e-5)
    # what the window and count call: the same averaged logits under the same temperature
    probabilities, _ = averaged.analyse(cells)
    expected = np.exp(logits / averaged.temperature)
    assert np.allclose(probabilities, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("views", [0, 9, 2.5, True, "4"])
def test_a_bad_view_count_is_refused_at_load(tmp_path, views):
    from wbc_desktop.inference.litert import LiteRTClassifier

    with pytest.raises(ModelError, match="test_time_views must be a whole number 1 to 8"):
        LiteRTClassifier(_store_with(tmp_path, test_time_views=views))
