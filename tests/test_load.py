"""20,000 images: memory stays bounded, results and progress stay correct, cancel answers within 0.5 s."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
from fakes import FakeClassifier
from PIL import Image

from wbc_desktop.core.images import discover
from wbc_desktop.core.pipeline import classify_iter

COUNT = 20_000


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twenty_thousand")
    template = Image.new("RGB", (8, 8))
    for i in range(COUNT):
        template.putpixel((0, 0), (i % 251, (i // 251) % 251, 7))
        template.save(folder / f"c{i:05d}.png", compress_level=0)
    return folder


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_images(big_folder):
    process = psutil.Process()
    found = discover([big_folder])
    assert len(found.images) == COUNT and not found.errors
    classifier = FakeClassifier()
    seen = 0
    rss_at = {}
    labels = np.zeros(len(classifier.classes), dtype=int)
    for seen, result in enumerate(classify_iter(iter(found.images), classifier, batch_size=16), start=1):
        assert result.ok
        labels[classifier.classes.index(result.label)] += 1
        if seen in (2_000, COUNT):
            rss_at[seen] = process.memory_info().rss
    assert seen == COUNT and labels.sum() == COUNT
    growth = (rss_at[COUNT] - rss_at[2_000]) / 2**20
    assert growth < 20, f"RSS grew by {growth:.1f} MB between image 2,000 and 20,000"


@pytest.mark.slow
def test_cancel_answers_within_half_a_second_on_20000_images(qtbot, big_folder):
    from conftest import drop, make_window

    window = make_window(qtbot, FakeClassifier(delay=0.002))
    with qtbot.waitSignal(window.batch_finished, timeout=60_000) as finished:
        drop(window, [big_folder])
        qtbot.waitUntil(lambda: window.cells_model.rowCount() >= 500, timeout=30_000)
        assert window.progress.maximum() == COUNT  # progress knows the total
        clicked = time.monotonic()
        window.cancel_button.click()
    answered = time.monotonic() - clicked
    assert finished.args == [True]
    assert answered < 0.5, f"cancel took {answered:.2f} s"
    kept = window.cells_model.rowCount()
    assert 500 <= kept < COUNT and len(window.case.cells) == kept
    assert window.progress.isHidden()
