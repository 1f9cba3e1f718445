"""The WBC differential: counts, percentages, exact confidence intervals, absolute counts and flags.

Pure functions over plain data, so the CLI, the GUI panel, the exports and the tests compute the same numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

from wbc_desktop.core.classes import IG_GROUP, NRBC, is_wbc

CLASSES: tuple[str, ...] = ("neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte")  # the 5-class models'

# Adult reference intervals for the relative differential (%). Labs override these in the settings.
DEFAULT_REFERENCE_RANGES: dict[str, tuple[float, float]] = {
    "neutrophil": (40.0, 75.0),
    "eosinophil": (1.0, 6.0),
    "basophil": (0.0, 2.0),
    "lymphocyte": (20.0, 45.0),
    "monocyte": (2.0, 10.0),
    "immature_granulocyte": (0.0, 1.0),  # IG above 1 % of white cells suggests a left shift (all IG together)
    # cells a person may file beyond the model's classes that are absent from normal blood: any one is flagged
    "blast": (0.0, 0.0),
    "plasma_cell": (0.0, 0.0),
}
# Labs correct the WBC count for nucleated red cells from this many per 100 WBC (analysers count them as WBC).
NRBC_CORRECTION_FROM = 5.0

TARGET_COUNTS = (100, 200)


@dataclass(frozen=True)
class ClassSummary:
    """One row of the differential table."""

    label: str
    count: int
    percent: float
    ci_low: float
    ci_high: float
    absolute: float | None
    reference: tuple[float, float] | None
    flag: str  # "H", "L" or ""
    # Flagged, but the 95 % interval still reaches back over the reference limit: the count cannot yet tell the
    # flag from chance. How many more cells (in hundreds) would, at the same percentage; None otherwise.
    more_to_decide: int | None = None
    undecided: bool = False  # flagged, and the interval spans the limit (whether or not counting more would help)


@dataclass(frozen=True)
class Differential:
    """The whole differential: a row per class plus the totals."""

    rows: tuple[ClassSummary, ...]
    total: int  # white cells counted (the differential's denominator)
    excluded: int
    target: int
    wbc_count: float | None
    non_wbc: dict[str, int] = field(default_factory=dict)  # erythroblasts, platelets: outside the differential
    ig_flag: str = ""  # H/L of all immature granulocytes together (with sub-types) against the IG reference

    def per_100_wbc(self, label: str) -> float | None:
        """How many of a non-WBC class were seen per 100 white cells (None before any white cell)."""
        return 100.0 * self.non_wbc.get(label, 0) / self.total if self.total else None

    @property
    def ig_total(self) -> tuple[int, float] | None:
        """All immature granulocytes (the model's IG and the sub-types a person refined them into): count and %,
        once a sub-type is in use (with the model's class alone its row says it)."""
        counts = self.counts
        if not any(counts.get(label, 0) for label in IG_GROUP[1:]):
            return None
        count = sum(counts.get(label, 0) for label in IG_GROUP)
        return count, 100.0 * count / self.total if self.total else 0.0

    @property
    def nrbc_per_100_wbc(self) -> float | None:
        return self.per_100_wbc(NRBC) if NRBC in self.non_wbc else None

    @property
    def corrected_wbc_count(self) -> float | None:
        """WBC x 100 / (100 + NRBC per 100 WBC), once the WBC count is entered and nucleated red cells were seen."""
        nrbc = self.nrbc_per_100_wbc
        if self.wbc_count is None or not nrbc:
            return None
        return self.wbc_count * 100.0 / (100.0 + nrbc)

    @property
    def wbc_count_corrected(self) -> bool:
        """Whether the absolute counts use the corrected WBC count (NRBC at or above the lab rule)."""
        nrbc = self.nrbc_per_100_wbc
        return self.corrected_wbc_count is not None and nrbc is not None and nrbc >= NRBC_CORRECTION_FROM

    @property
    def counts(self) -> dict[str, int]:
        return {row.label: row.count for row in self.rows}

    @property
    def percent(self) -> dict[str, float]:
        return {row.label: row.percent for row in self.rows}

    @property
    def progress(self) -> float:
        """Fraction of the target count reached (capped at 1)."""
        return min(1.0, self.total / self.target) if self.target else 1.0

    def to_dict(self) -> dict[str, object]:
        document: dict[str, object] = {
            "total": self.total,
            "excluded": self.excluded,
            "target": self.target,
            "wbc_count": self.wbc_count,
            "counts": self.counts,
            "percent": self.percent,
            "rows": [asdict(row) for row in self.rows],
        }
        if self.ig_total is not None:
            document["ig_total"] = {"count": self.ig_total[0], "percent": self.ig_total[1], "flag": self.ig_flag}
        if self.non_wbc:
            document["non_wbc"] = {
                label: {"count": count, "per_100_wbc": self.per_100_wbc(label)} for label, count in self.non_wbc.items()
            }
            document["nrbc_per_100_wbc"] = self.nrbc_per_100_wbc
            document["corrected_wbc_count"] = self.corrected_wbc_count
            document["absolute_counts_use_corrected_wbc"] = self.wbc_count_corrected
        return document


def _betainc_regularized(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc_regularized(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(log_front) * result / a


def _beta_quantile(p: float, a: float, b: float) -> float:
    """Inverse of the regularized incomplete beta by bisection (monotone, robust, fast enough for tables)."""
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if _betainc_regularized(a, b, middle) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-14:
            break
    return (low + high) / 2.0


@functools.lru_cache(maxsize=8192)
def clopper_pearson(count: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a proportion, as a fraction (0..1); Rümke's tables give the same limits.

    Cached: the differential panel recomputes the same few (count, total) pairs on every change.
    """
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= count <= total:
        raise ValueError(f"count {count} outside 0..{total}")
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else _beta_quantile(alpha / 2.0, count, total - count + 1)
    high = 1.0 if count == total else _beta_quantile(1.0 - alpha / 2.0, count + 1, total - count)
    return (low, high)


def spans_limit(low: float, high: float, reference: tuple[float, float] | None) -> bool:
    """Whether an interval (in %) straddles either reference limit."""
    return reference is not None and any(low < limit < high for limit in reference)


def cells_to_decide(
    count: int, total: int, reference: tuple[float, float] | None, most: int = 1000, confidence: float = 0.95
) -> int | None:
    """How many more cells, in steps of 100, until the 95 % interval at the same proportion no longer spans a
    reference limit (tessera's "count 100 more"); None if it does not span one now or would not by ``most``."""
    if not total or reference is None:
        return None
    low, high = clopper_pearson(count, total, confidence)
    if not spans_limit(100 * low, 100 * high, reference):
        return None
    for more in range(100, most + 1, 100):
        bigger = total + more
        low, high = clopper_pearson(round(count * bigger / total), bigger, confidence)
        if not spans_limit(100 * low, 100 * high, reference):
            return more
    return None


def flag_for(percent: float, reference: tuple[float, float] | None) -> str:
    """'H' above the reference interval, 'L' below it, '' inside or without one."""
    if reference is None:
        return ""
    low, high = reference
    if percent > high:
        return "H"
    if percent < low:
        return "L"
    return ""


def summarize(
    labels: Iterable[str | None],
    *,
    classes: tuple[str, ...] = CLASSES,
    wbc_count: float | None = None,
    reference_ranges: Mapping[str, tuple[float, float]] | None = None,
    target: int = 100,
    confidence: float = 0.95,
    optional: tuple[str, ...] = (),
    outside: tuple[str, ...] = (),
) -> Differential:
    """Summarize the labels of the cells in a case.

    ``labels`` holds one entry per cell: a class name counts it, ``None`` means the cell was excluded (artifact,
    smudge, not a WBC) and is not counted. White-cell classes make the rows; the others of ``classes``
    (erythroblasts, platelets: :mod:`wbc_desktop.core.classes`) are counted outside the differential, per 100
    WBC; ``optional`` classes (a lab's extra categories) get a row only when a cell is in them, and those of
    them in ``outside`` (a lab's own non-WBC categories) are counted per 100 WBC too. ``wbc_count`` is
    the total WBC count in 10^9/L; with it each class gets an absolute count (from the
    NRBC-corrected count when nucleated red cells reach :data:`NRBC_CORRECTION_FROM` per 100 WBC). Flags are
    raised only once at least one cell is counted.
    """
    ranges = DEFAULT_REFERENCE_RANGES if reference_ranges is None else reference_ranges
    counts = dict.fromkeys((*classes, *(c for c in optional if c not in classes)), 0)
    excluded = 0
    for label in labels:
        if label is None:
            excluded += 1
        elif label in counts:
            counts[label] += 1
        else:
            raise ValueError(f"unknown class {label!r}; expected one of {', '.join(classes)}")
    # ``optional`` categories (a lab's extra ones) appear only once a cell is in them
    for label in optional:
        if label not in classes and counts[label] == 0:
            del counts[label]
    non_wbc = {label: counts.pop(label) for label in list(counts) if not is_wbc(label, outside)}
    total = sum(counts.values())
    partial = Differential((), total, excluded, target, wbc_count, non_wbc)
    basis = partial.corrected_wbc_count if partial.wbc_count_corrected else wbc_count
    rows = []
    for label in counts:
        count = counts[label]
        percent = 100.0 * count / total if total else 0.0
        low, high = clopper_pearson(count, total, confidence) if total else (0.0, 0.0)
        reference = ranges.get(label)
        rows.append(
            ClassSummary(
                label=label,
                count=count,
                percent=percent,
                ci_low=100.0 * low,
                ci_high=100.0 * high,
                absolute=(basis * count / total) if (basis is not None and total) else None,
                reference=tuple(reference) if reference is not None else None,
                flag=flag_for(percent, reference) if total else "",
                more_to_decide=(
                    cells_to_decide(count, total, reference, confidence=confidence)
                    if flag_for(percent, reference)
                    else None
                ),
                undecided=bool(flag_for(percent, reference)) and spans_limit(100.0 * low, 100.0 * high, reference),
            )
        )
    result = Differential(
        rows=tuple(rows), total=total, excluded=excluded, target=target, wbc_count=wbc_count, non_wbc=non_wbc
    )
    if result.ig_total is not None and total:  # sub-types in use: the IG reference judges them all together
        ig_reference = ranges.get(IG_GROUP[0])
        result = replace(result, ig_flag=flag_for(result.ig_total[1], tuple(ig_reference) if ig_reference else None))
    return result


def format_table(differential: Differential) -> str:
    """A plain-text differential table for the terminal."""
    width = max(12, *(len(row.label) + 1 for row in differential.rows), *(len(k) + 1 for k in differential.non_wbc))
    lines = [
        f"{'class':<{width}}{'count':>7}{'%':>8}{'95% CI':>16}{'x10^9/L':>10}{'ref %':>12}  flag",
    ]
    for row in differential.rows:
        ci = f"{row.ci_low:5.1f}-{row.ci_high:5.1f}"
        absolute = f"{row.absolute:10.2f}" if row.absolute is not None else f"{'':>10}"
        reference = f"{row.reference[0]:g}-{row.reference[1]:g}" if row.reference else ""
        counted = f"{row.label:<{width}}{row.count:>7}{row.percent:>8.1f}"
        lines.append(f"{counted}{ci:>16}{absolute}{reference:>12}  {row.flag}")
    lines.append(
        f"{'total':<{width}}{differential.total:>7}   (target {differential.target}, excluded {differential.excluded})"
    )
    if differential.ig_total is not None:
        count, percent = differential.ig_total
        lines.append(
            f"{'IG, all':<{width}}{count:>7}{percent:>8.1f}   immature granulocytes with their sub-types  "
            f"{differential.ig_flag}"
        )
    for label, count in differential.non_wbc.items():
        per_100 = differential.per_100_wbc(label)
        per_100_text = "-" if per_100 is None else f"{per_100:.1f}"
        lines.append(f"{label:<{width}}{count:>7}   not WBC: {per_100_text} per 100 WBC")
    if differential.corrected_wbc_count is not None:
        used = "used for the absolute counts" if differential.wbc_count_corrected else "below the correction rule"
        lines.append(
            f"WBC count corrected for NRBC: {differential.corrected_wbc_count:.2f} x10^9/L "
            f"(entered {differential.wbc_count:g}; {used})"
        )
    return "\n".join(lines)
