"""Qt's text functions that lean on ICU, run by ``self-test``: the Linux app ships ICU's data trimmed to the root
and English locales (scripts/trim_icu_data.py), which must still collate, change case and format dates."""

from __future__ import annotations

from PySide6.QtCore import QCollator, QDate, QLocale


def qt_text_functions_work() -> tuple[bool, str]:
    """Case mapping, collation, locale and date formatting give sensible answers (True, what they gave)."""
    upper = QLocale(QLocale.Language.German).toUpper("Straße Ärzte")
    collator = QCollator(QLocale(QLocale.Language.English))
    ordered = sorted(["b-12", "A-3", "a-10"], key=collator.sortKey)
    date = QLocale(QLocale.Language.English).toString(QDate(2026, 1, 31), QLocale.FormatType.LongFormat)
    ok = upper.startswith("STRA") and "ÄRZTE" in upper and ordered[-1] == "b-12" and "2026" in date
    return ok, f"{upper!r}, {ordered}, {date!r}"
