"""What each class a model or a technician can name means for the report: a white cell counted in the
differential, or an object outside it (reported per 100 WBC). One home for the class vocabulary."""

from __future__ import annotations

# The differential's rows, in the order labs print them. The immature granulocytes (promyelocytes, myelocytes,
# metamyelocytes) count as white cells: their share is the IG % of a left shift.
WBC_CLASSES: tuple[str, ...] = (
    "neutrophil",
    "eosinophil",
    "basophil",
    "lymphocyte",
    "monocyte",
    "immature_granulocyte",
)
# Not white cells: never in the differential's total; reported per 100 WBC. Nucleated red cells (erythroblasts)
# also correct the WBC count (WBC x 100 / (100 + NRBC)), which analysers include them in.
NON_WBC_CLASSES: tuple[str, ...] = ("erythroblast", "platelet")
NRBC = "erythroblast"
# Every class a technician can put a cell in, and the default review keys 1-8 in this order.
ALL_CLASSES: tuple[str, ...] = (*WBC_CLASSES, *NON_WBC_CLASSES)
DEFAULT_KEY_MAP: dict[str, str] = {str(number): label for number, label in enumerate(ALL_CLASSES, start=1)}

DISPLAY_NAMES: dict[str, str] = {
    "immature_granulocyte": "immature granulocyte (IG)",
    "erythroblast": "erythroblast (NRBC)",
}


def is_wbc(label: str) -> bool:
    """Whether a class counts in the differential (unknown names do: a model's class is a white cell unless
    this catalogue says otherwise)."""
    return label not in NON_WBC_CLASSES


def display_name(label: str) -> str:
    return DISPLAY_NAMES.get(label, label)


def display_title(label: str) -> str:
    """The name at the start of a line or a heading: "Immature granulocyte (IG)" (abbreviations kept)."""
    name = display_name(label)
    return name[:1].upper() + name[1:]


def display_order(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The usual order: the white cells as labs print them, then any other white class, then the non-WBC ones."""
    known = [c for c in WBC_CLASSES if c in classes]
    others = [c for c in classes if c not in known and is_wbc(c)]
    return (*known, *others, *[c for c in NON_WBC_CLASSES if c in classes])
