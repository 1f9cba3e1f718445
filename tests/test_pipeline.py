"""The pipeline prepares cells on threads ahead of the model: same results as in one thread, in order, bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from conftest import BCCD_CROPS, FIXTURES, PBC

from wbc_desktop.core.images import load_image
from wbc_desktop.core.pipeline import classify_iter, prepared_in_order


def mixed_inputs(tmp_path: Path) -> list[Path]:
    """PBC cells, another lab's crops (routed to the stain-robust model), a smear field and two bad files."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cells = sorted(PBC.rglob("*.jpg"))
    return [
        *cells[:9],
        broken,
        *sorted(BCCD_CROPS.rglob("*.jpg"))[:5],
        empty,
        FIXTURES / "bccd_fields" / "BloodImage_00000.jpg",
        *cells[9:],
    ]


def test_parallel_preparation_gives_the_sequential_results_in_order(classifier, tmp_path):
    paths = mixed_inputs(tmp_path)
    sequential = list(classify_iter(paths, classifier, batch_size=4, mode="auto", workers=0))
    parallel = list(classify_iter(paths, classifier, batch_size=4, mode="auto", workers=3))
    assert [r.path for r in parallel] == [r.path for r in sequential]
    assert any(r.source is not None for r in sequential) and sum(not r.ok for r in sequential) == 2
    for one, other in zip(sequential, parallel, strict=True):
        assert (one.label, one.error, one.box) == (other.label, other.error, other.box)
        assert one.probabilities == other.probabilities and one.domain_score == other.domain_score
    # and the pipeline's views are the model's own: the same calls as the classifier given the images directly
    cells = [p for p in paths if p.parent.parent in (PBC, BCCD_CROPS)]
    direct = classifier.predict([load_image(p) for p in cells])
    by_path = {r.path: r for r in parallel}
    for path, row in zip(cells, direct, strict=True):
        assert np.allclose([by_path[path].probabilities[c] for c in classifier.classes], row, atol=1e-6)


def test_preparation_runs_ahead_by_a_bounded_amount_and_stops_when_closed():
    started: list[int] = []
    lock = threading.Lock()

    def work(path: Path) -> list[int]:
        with lock:
            started.append(int(path.name))
        time.sleep(0.01)
        return [int(path.name)]

    stream = prepared_in_order((Path(str(i)) for i in range(1000)), work, workers=2, ahead=8)
    assert [next(stream) for _ in range(5)] == [[0], [1], [2], [3], [4]]
    assert len(started) <= 5 + 8  # never more than `ahead` in flight beyond what was consumed
    stream.close()  # what a cancel does
    time.sleep(0.1)
    assert len(started) <= 5 + 8 + 2  # queued work was dropped; at most the running items finished
