"""CSV and JSON exports of a case or a batch run, written atomically (temp file + rename)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wbc_desktop.core.atomic import atomic_write_text
from wbc_desktop.core.differential import Differential
from wbc_desktop.core.status import Status


@dataclass
class ExportCell:
    """One cell as it appears in exports."""

    path: str
    label: str | None  # None when excluded
    probabilities: dict[str, float]
    status: str = Status.AUTO  # core.status
    predicted: str | None = None  # the model's call, when a person changed it
    source: str | None = None  # the field image a detected cell was cut from
    box: list[int] | None = None
    extra: dict = field(default_factory=dict)
    review: str | None = None  # why the model call needs a person's review (core.review); None: it need not

    def to_dict(self) -> dict:
        data: dict = {
            "path": self.path,
            "label": self.label,
            "probabilities": self.probabilities,
            "status": self.status,
        }
        if self.predicted is not None and self.predicted != self.label:
            data["predicted"] = self.predicted
        if self.source is not None:
            data["source"] = self.source
            data["box"] = self.box
        data["needs_review"] = self.needs_review
        if self.needs_review:
            data["review_reason"] = self.review
        data.update(self.extra)
        return data

    @property
    def needs_review(self) -> bool:
        """A model call no person acted on that the review rule sends to the needs-review bin."""
        return self.status == Status.AUTO and self.review is not None


def build_report(
    cells: Sequence[ExportCell],
    differential: Differential,
    *,
    model: dict,
    errors: Iterable[tuple[str, str]] = (),
    case: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """The JSON document: model, images, counts, percent, differential, cells, errors (and case data)."""
    report: dict = {
        "model": model,
        "images": len({cell.source or cell.path for cell in cells}),  # a field with 3 WBCs is one image
        "counts": differential.counts,
        "percent": differential.percent,
        "differential": differential.to_dict(),
        "needs_review": sum(cell.needs_review for cell in cells),
        "cells": [cell.to_dict() for cell in cells],
        "errors": [{"path": path, "error": message} for path, message in errors],
    }
    if case is not None:
        report["case"] = case
    if extra:
        report.update(extra)
    return report


def finite_or_none(value):
    """The document with every NaN or infinity replaced by null: bare NaN is not JSON (other programs reject the
    file), and a probability that is not a number must read as missing, not as a value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value


def json_text(report: dict) -> str:
    """Readable UTF-8 JSON (strict: no NaN); falls back to ASCII escapes when a file name is not valid UTF-8."""
    report = finite_or_none(report)
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(report, indent=2, ensure_ascii=True, allow_nan=False)
    return text + "\n"


def write_json(path: str | os.PathLike[str], report: dict) -> None:
    atomic_write_text(path, json_text(report))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula (OWASP)


def spreadsheet_safe(text: str) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula (a file named "=HYPERLINK(…)")
    gets a leading apostrophe, OWASP's rule against CSV injection; so does one that already starts with an
    apostrophe, so that :func:`from_spreadsheet_safe` gives every text back exactly."""
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def from_spreadsheet_safe(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def csv_text(cells: Sequence[ExportCell], classes: Sequence[str], differential: Differential) -> str:
    """One row per cell (path, label, status, confidence, each probability), a blank row, then the summary."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180 CRLF rows: a "\r" or "\n" inside a file name gets quoted
    writer.writerow(
        ["path", "label", "status", "predicted", "confidence", "needs_review", *[f"p_{c}" for c in classes]]
    )
    for cell in cells:
        confidence = max(cell.probabilities.values()) if cell.probabilities else ""
        writer.writerow(
            [
                spreadsheet_safe(cell.path),
                spreadsheet_safe(cell.label or ""),
                cell.status,
                spreadsheet_safe(cell.predicted or ""),
                f"{confidence:.6f}" if confidence != "" else "",
                "yes" if cell.needs_review else "no",
                *[f"{cell.probabilities.get(c, 0.0):.6f}" for c in classes],
            ]
        )
    writer.writerow([])
    writer.writerow(["class", "count", "percent", "ci95_low", "ci95_high", "absolute_1e9_per_L", "flag"])
    for row in differential.rows:
        writer.writerow(
            [
                row.label,
                row.count,
                f"{row.percent:.2f}",
                f"{row.ci_low:.2f}",
                f"{row.ci_high:.2f}",
                f"{row.absolute:.3f}" if row.absolute is not None else "",
                row.flag,
            ]
        )
    writer.writerow(["total", differential.total, "", "", "", differential.wbc_count or "", ""])
    writer.writerow(["excluded", differential.excluded, "", "", "", "", ""])
    if differential.ig_total is not None:  # its own block: a reader summing the class rows must not count IG twice
        writer.writerow([])
        writer.writerow(["group", "count", "percent", "", "", "", "flag"])
        ig_count, ig_percent = differential.ig_total
        writer.writerow(["ig_total", ig_count, f"{ig_percent:.2f}", "", "", "", differential.ig_flag])
    if differential.non_wbc:  # outside the differential: counts and "percent" column = per 100 WBC
        writer.writerow([])
        writer.writerow(["not_wbc", "count", "per_100_wbc", "", "", "", ""])
        for label, count in differential.non_wbc.items():
            per_100 = differential.per_100_wbc(label)
            writer.writerow([label, count, "" if per_100 is None else f"{per_100:.2f}", "", "", "", ""])
        corrected = differential.corrected_wbc_count
        if corrected is not None:
            used = "used" if differential.wbc_count_corrected else "not used (NRBC below the lab rule)"
            writer.writerow(["wbc_count_corrected_for_nrbc", "", "", "", "", f"{corrected:.3f}", used])
    return buffer.getvalue()


def write_csv(
    path: str | os.PathLike[str],
    cells: Sequence[ExportCell],
    classes: Sequence[str],
    differential: Differential,
) -> None:
    atomic_write_text(path, csv_text(cells, classes, differential))


def read_csv_cells(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The per-cell rows of an exported CSV (up to the blank separator row), as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = []
        for row in reader:
            if not row:
                break
            rows.append(dict(zip(header, (from_spreadsheet_safe(value) for value in row), strict=True)))
    return rows
