"""The lab-profile head as a correction of the bundled model (pure NumPy, synthetic features)."""

from __future__ import annotations

import numpy as np
import pytest

from wbc_desktop.core.lab_profile import Profile, fit_head, load_profile

CLASSES = ["basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil"]


def lab(rng: np.random.Generator, per_class: dict[int, int], dims: int = 32):
    """Features with one informative direction per class; the bundled model's logits read them correctly except
    that it calls every eosinophil (1) a neutrophil (4), as the PBC model does with another lab's eosinophils."""
    targets = np.concatenate([np.full(n, c) for c, n in per_class.items()])
    features = rng.normal(0, 1, (len(targets), dims))
    features[np.arange(len(targets)), targets] += 4.0
    base_logits = features[:, :5] * 2.0
    base_logits[targets == 1, 4] += 10.0
    return features, targets, base_logits


def test_correction_head_fixes_the_labs_confusion_and_keeps_unseen_classes():
    rng = np.random.default_rng(0)
    features, targets, base_logits = lab(rng, {1: 8, 2: 8, 3: 8, 4: 8})  # no basophil among the verified cells
    head = fit_head(features, targets, CLASSES, base_logits=base_logits, base_temperature=1.0)
    test_features, test_targets, test_base = lab(np.random.default_rng(1), {0: 20, 1: 20, 4: 20})
    predicted = head.logits(test_features, test_base).argmax(axis=1)
    assert np.mean(test_base.argmax(axis=1)[test_targets == 1] == 1) <= 0.4  # the bundled model misses most
    assert np.mean(predicted[test_targets == 1] == 1) >= 0.8  # corrected
    assert np.mean(predicted[test_targets == 0] == 0) >= 0.85  # basophils: never seen, still known
    scratch = fit_head(features, targets, CLASSES)
    assert np.mean(scratch.logits(test_features).argmax(axis=1)[test_targets == 0] == 0) == 0.0  # forgotten


def test_correction_head_needs_the_base_logits_and_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    features, targets, base_logits = lab(rng, {c: 5 for c in range(5)})
    head = fit_head(features, targets, CLASSES, base_logits=base_logits, base_temperature=2.0)
    assert head.base_weight == pytest.approx(0.5)
    with pytest.raises(ValueError, match="logits are needed"):
        head.logits(features)
    Profile("lab", {"sha256": "x"}, head).save(tmp_path)
    again = load_profile(tmp_path).head
    assert again.base_weight == pytest.approx(0.5)
    assert np.allclose(again.logits(features, base_logits), head.logits(features, base_logits))
