"""Property tests (hypothesis): loading never crashes on garbage, statistics keep their invariants, exports
round-trip any file name."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from badfiles import cell_like, jpeg_bytes, png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wbc_desktop.core.differential import CLASSES, clopper_pearson, summarize
from wbc_desktop.core.export import ExportCell, csv_text, from_spreadsheet_safe, json_text
from wbc_desktop.core.images import ImageLoadError, load_image

REAL = {"jpeg": jpeg_bytes(cell_like((40, 30))), "png": png_bytes(cell_like((40, 30)))}
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def load_bytes(tmp_path, content: bytes, name: str = "x.jpg"):
    path = tmp_path / name
    path.write_bytes(content)
    try:
        array = load_image(path)
    except ImageLoadError as error:
        assert str(error) and "\n" not in str(error)
        return None
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    return array


@fast
@given(content=st.binary(max_size=2048))
def test_random_bytes_never_crash_the_loader(tmp_path, content):
    load_bytes(tmp_path, content)


@fast
@given(
    kind=st.sampled_from(sorted(REAL)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_mutated_real_images_load_or_fail_cleanly(tmp_path, kind, edits, cut):
    content = bytearray(REAL[kind])
    for position, value in edits:
        content[position % len(content)] = value
    if cut is not None:
        content = content[: cut % len(content)]
    load_bytes(tmp_path, bytes(content), f"m.{kind}")


labels = st.lists(st.one_of(st.sampled_from(CLASSES), st.none()), max_size=300)


@settings(max_examples=300, deadline=None)
@given(labels=labels, wbc=st.one_of(st.none(), st.floats(0.1, 100.0)))
def test_differential_invariants(labels, wbc):
    result = summarize(labels, wbc_count=wbc)
    counted = [label for label in labels if label is not None]
    assert sum(result.counts.values()) == result.total == len(counted)
    assert result.excluded == len(labels) - len(counted)
    if result.total:
        assert abs(sum(result.percent.values()) - 100.0) < 1e-6
        assert abs(sum(round(p, 1) for p in result.percent.values()) - 100.0) <= 0.25  # within rounding
        if wbc is not None:
            assert abs(sum(row.absolute for row in result.rows) - wbc) < 1e-6
    for row in result.rows:
        assert row.ci_low - 1e-9 <= row.percent <= row.ci_high + 1e-9


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 1000), data=st.data())
def test_clopper_pearson_contains_estimate_and_is_ordered(total, data):
    count = data.draw(st.integers(0, total))
    low, high = clopper_pearson(count, total)
    assert 0.0 <= low <= count / total <= high <= 1.0


names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60
) | st.sampled_from(["a,b.jpg", 'say "hi".png', "line\nbreak.jpg", "tab\there.png", "细胞 ü.tif", "=cmd|x"])


@settings(max_examples=200, deadline=None)
@given(paths=st.lists(names, min_size=1, max_size=8), probs=st.floats(0.0, 1.0))
def test_csv_and_json_round_trip_any_file_name(paths, probs):
    cells = [
        ExportCell(path, CLASSES[i % 5], {c: probs if c == CLASSES[i % 5] else 0.0 for c in CLASSES})
        for i, path in enumerate(paths)
    ]
    differential = summarize(cell.label for cell in cells)
    rows = list(csv.reader(io.StringIO(csv_text(cells, CLASSES, differential), newline="")))
    assert [from_spreadsheet_safe(row[0]) for row in rows[1 : 1 + len(cells)]] == paths
    assert not any(row[0].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1 : 1 + len(cells)])
    assert rows[1 + len(cells)] == []  # the blank row before the summary
    report = {"cells": [cell.to_dict() for cell in cells]}
    assert [c["path"] for c in json.loads(json_text(report))["cells"]] == paths


def test_json_round_trip_of_undecodable_file_name():
    name = "bad_\udcff.png"  # how Python holds a Linux file name that is not UTF-8
    report = {"cells": [ExportCell(name, "monocyte", {}).to_dict()]}
    text = json_text(report)
    text.encode("utf-8")  # valid UTF-8 JSON
    assert json.loads(text)["cells"][0]["path"] == name
