"""Every colour and style sheet of the window in one place (one look, changed in one file)."""

from __future__ import annotations

# A colour per class (bars, field boxes); anything else gets OTHER.
CLASS_COLOURS = {
    "neutrophil": "#2563eb",
    "eosinophil": "#dc2626",
    "basophil": "#7c3aed",
    "lymphocyte": "#059669",
    "monocyte": "#d97706",
}
OTHER = "#6b7280"
INK = "#111827"  # text and outlines drawn by hand
TRACK = "#e5e7eb"  # the empty part of a bar
HIGH, LOW = "#b91c1c", "#1d4ed8"  # H / L flags
NEEDS_REVIEW = "#b45309"
CURRENT_CELL = "#1d4ed8"  # the frame around the highlighted thumbnail: seen on beige and on blue-grey stains
HINT = "color: #4b5563;"
COLUMN_HEADER = "font-weight: 600; padding: 2px;"
IMAGE_FRAME = "background: #f3f4f6; border: 1px solid #d1d5db;"
TARGET_REACHED = "QProgressBar::chunk { background: #16a34a; }"

# Banners: yellow says "look", red says "something is wrong with the record or it is not saved".
WARNING_BANNER = "background:#fef3c7; color:#78350f; padding:6px; border:1px solid #f59e0b;"
ALARM_BANNER = "background:#fee2e2; color:#7f1d1d; padding:6px; border:2px solid #dc2626; font-weight:bold;"
ALARM_BAR = "background:#fee2e2; color:#7f1d1d;"
ALARM_TEXT = "color:#b91c1c; font-weight:bold;"
ERROR_TEXT = "color:#b91c1c;"
BOLD_PADDED = "font-weight:bold; padding:4px;"


def class_colour(label: str | None) -> str:
    return CLASS_COLOURS.get(label or "", OTHER)
