"""Differential statistics against hand-computed values and a published Rümke table."""

from __future__ import annotations

import pytest
from scipy.stats import beta

from wbc_desktop.core.differential import (
    CLASSES,
    DEFAULT_REFERENCE_RANGES,
    clopper_pearson,
    flag_for,
    format_table,
    summarize,
)


def test_counts_percent_and_exclusion_by_hand():
    labels = ["neutrophil"] * 6 + ["lymphocyte"] * 3 + ["monocyte"] + [None, None]
    result = summarize(labels, wbc_count=8.0)
    assert result.total == 10 and result.excluded == 2
    assert result.counts == {"neutrophil": 6, "eosinophil": 0, "basophil": 0, "lymphocyte": 3, "monocyte": 1}
    assert result.percent["neutrophil"] == pytest.approx(60.0)
    assert result.percent["lymphocyte"] == pytest.approx(30.0)
    rows = {row.label: row for row in result.rows}
    assert rows["neutrophil"].absolute == pytest.approx(4.8)  # 8.0 x 10^9/L x 6/10
    assert rows["monocyte"].absolute == pytest.approx(0.8)
    assert rows["eosinophil"].flag == "L"  # 0 % < 1 %
    assert rows["neutrophil"].flag == ""
    assert rows["monocyte"].flag == ""  # 10 % is inside 2-10


def test_rumke_table_value_n100_p10():
    # Rümke (1975) / CLSI H20-A2 table: 10 % observed in a 100-cell differential -> 95 % limits 4.9-17.6 %.
    low, high = clopper_pearson(10, 100)
    assert round(100 * low, 1) == 4.9
    assert round(100 * high, 1) == 17.6


def test_rumke_table_value_n200_p50():
    # Same table, 200 cells, 50 % observed -> 42.9-57.1 %.
    low, high = clopper_pearson(100, 200)
    assert round(100 * low, 1) == 42.9
    assert round(100 * high, 1) == 57.1


@pytest.mark.parametrize(("count", "total"), [(0, 100), (1, 100), (37, 100), (99, 100), (100, 100), (3, 7), (0, 1)])
def test_clopper_pearson_matches_beta_quantiles(count, total):
    low, high = clopper_pearson(count, total)
    expected_low = 0.0 if count == 0 else beta.ppf(0.025, count, total - count + 1)
    expected_high = 1.0 if count == total else beta.ppf(0.975, count + 1, total - count)
    assert low == pytest.approx(expected_low, abs=1e-9)
    assert high == pytest.approx(expected_high, abs=1e-9)


def test_clopper_pearson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)


def test_flags_and_custom_ranges():
    assert flag_for(80.0, (40.0, 75.0)) == "H"
    assert flag_for(30.0, (40.0, 75.0)) == "L"
    assert flag_for(50.0, None) == ""
    result = summarize(["basophil"] * 5 + ["neutrophil"] * 95, reference_ranges={"basophil": (0.0, 10.0)})
    rows = {row.label: row for row in result.rows}
    assert rows["basophil"].flag == ""  # lab widened the basophil range
    assert rows["neutrophil"].reference is None and rows["neutrophil"].flag == ""


def test_progress_toward_target():
    assert summarize(["monocyte"] * 50, target=200).progress == pytest.approx(0.25)
    assert summarize(["monocyte"] * 250, target=200).progress == 1.0


def test_empty_case_has_all_classes_and_no_flags():
    result = summarize([])
    assert set(result.counts) == set(CLASSES)
    assert all(row.flag == "" and row.percent == 0.0 for row in result.rows)
    assert "total" in format_table(result)


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="unknown class"):
        summarize(["platelet"])


def test_default_ranges_cover_every_white_cell_class():
    from wbc_desktop.core.classes import EXTRA_WBC, WBC_CLASSES

    assert set(WBC_CLASSES) <= set(DEFAULT_REFERENCE_RANGES) <= set(WBC_CLASSES) | set(EXTRA_WBC)


def test_a_flag_the_interval_does_not_support_asks_for_more_cells():
    """As tessera does: 12 % monocytes in 100 cells is flagged H (reference 2-10) but its interval (6.4-20.0)
    spans 10, so the count cannot yet tell; 0 eosinophils of 100 (reference 1-6) is settled by 300 more."""
    result = summarize(["neutrophil"] * 69 + ["lymphocyte"] * 19 + ["monocyte"] * 12)
    rows = {row.label: row for row in result.rows}
    assert rows["monocyte"].flag == "H" and rows["monocyte"].undecided and rows["monocyte"].more_to_decide == 900
    assert rows["eosinophil"].undecided and rows["eosinophil"].more_to_decide == 300
    assert not rows["neutrophil"].undecided and rows["neutrophil"].more_to_decide is None  # inside: no flag
    decided = summarize(["neutrophil"] * 50 + ["lymphocyte"] * 20 + ["monocyte"] * 30)
    assert not next(r for r in decided.rows if r.label == "monocyte").undecided  # 30 %: clearly high
