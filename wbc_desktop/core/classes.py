"""What each class a model or a technician can name means for the report: a white cell counted in the
differential, or an object outside it (reported per 100 WBC). One home for the class vocabulary."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

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
# Categories a technician can put a cell in beyond any model's classes (CellaVision's and a manual counter's):
# white cells that count in the differential (the IG sub-types refine "immature granulocyte"), and objects
# reported per 100 WBC outside it. A future model class with one of these names fits without a migration.
EXTRA_WBC: tuple[str, ...] = (
    "band_neutrophil",
    "promyelocyte",
    "myelocyte",
    "metamyelocyte",
    "blast",
    "variant_lymphocyte",
    "plasma_cell",
    "other_wbc",
)
EXTRA_NON_WBC: tuple[str, ...] = ("smudge_cell", "giant_platelet", "platelet_clump", "artefact")
CATEGORIES: tuple[str, ...] = (*EXTRA_WBC, *EXTRA_NON_WBC)
# Labs report the immature granulocytes as one figure (IG %): the model's class and the sub-types a person refined
IG_GROUP: tuple[str, ...] = ("immature_granulocyte", "promyelocyte", "myelocyte", "metamyelocyte")
# Every class a technician can put a cell in, and the default review keys 1-8 in this order.
ALL_CLASSES: tuple[str, ...] = (*WBC_CLASSES, *NON_WBC_CLASSES)
DEFAULT_KEY_MAP: dict[str, str] = {str(number): label for number, label in enumerate(ALL_CLASSES, start=1)}

DISPLAY_NAMES: dict[str, str] = {
    "immature_granulocyte": "immature granulocyte (IG)",
    "erythroblast": "erythroblast (NRBC)",
    "band_neutrophil": "band neutrophil",
    "promyelocyte": "promyelocyte (IG)",
    "myelocyte": "myelocyte (IG)",
    "metamyelocyte": "metamyelocyte (IG)",
    "variant_lymphocyte": "variant (reactive) lymphocyte",
    "plasma_cell": "plasma cell",
    "other_wbc": "other white cell",
    "smudge_cell": "smudge cell",
    "giant_platelet": "giant platelet",
    "platelet_clump": "platelet clump",
}


def is_wbc(label: str, outside: Collection[str] = ()) -> bool:
    """Whether a class counts in the differential (unknown names do: a model's class is a white cell unless
    this catalogue, or ``outside``, a lab's own categories reported per 100 WBC, says otherwise)."""
    return label not in NON_WBC_CLASSES and label not in EXTRA_NON_WBC and label not in outside


def outside_differential(kinds: Mapping[str, bool]) -> tuple[str, ...]:
    """The labels of ``kinds`` (a lab's own categories: label -> counts as a white cell) reported per 100 WBC."""
    return tuple(label for label, counts in kinds.items() if not counts)


def display_name(label: str) -> str:
    return DISPLAY_NAMES.get(label, label.replace("_", " "))


# A lab's own category name: what a technician types ("Hairy cell", "Sézary cell", "LGL"), stored as a label
# like the catalogue's ("Hairy_cell"); letters of any language, digits, spaces, hyphens and underscores.
_CATEGORY_NAME = re.compile(r"^[^\W_][\w -]*$")
MAX_CATEGORY_NAME = 40
# Words the exports and the window use for something else (CSV summary rows and blocks, gallery columns): a
# category called "total" or "excluded" would read as one of them.
RESERVED_NAMES = frozenset(
    {
        "total",
        "excluded",
        "exclude",
        "not wbc",
        "ig total",
        "class",
        "group",
        "review",
        "needs review",
        "other",
        "other categories",
        "count",
        "unknown",
        "none",
    }
)


def category_label(name: str) -> str:
    """The label a typed category name is stored under: its words joined by underscores, as typed otherwise
    (an abbreviation such as "LGL" stays one), in Unicode's composed form."""
    return "_".join(unicodedata.normalize("NFC", name).split())


def _comparable(name: str) -> str:
    """What two names must not share: case, width, accents' composition and space/hyphen/underscore aside."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(folded.replace("_", " ").replace("-", " ").split())


def category_name_problem(name: str, taken: Collection[str]) -> str | None:
    """Why ``name`` cannot be a new category (None if it can); ``taken``: the labels already in use."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name:
        return "type a name for the category"
    if len(name) > MAX_CATEGORY_NAME:
        return f"a category name has at most {MAX_CATEGORY_NAME} characters"
    if not _CATEGORY_NAME.match(name):
        return "a category name is letters, digits, spaces, hyphens and underscores, starting with a letter or digit"
    if _comparable(name) in RESERVED_NAMES or _comparable(name).startswith("wbc count"):
        return f"“{name}” is a word the report uses for something else; choose another name"
    clash = {_comparable(label): label for label in taken}.get(_comparable(name))
    if clash is not None:
        return f"“{name}” exists already (as “{display_title(clash)}”)"
    return None


def display_title(label: str) -> str:
    """The name at the start of a line or a heading: "Immature granulocyte (IG)" (abbreviations kept)."""
    name = display_name(label)
    return name[:1].upper() + name[1:]


def display_order(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The usual order: the white cells as labs print them, then any other white class, then the non-WBC ones."""
    known = [c for c in WBC_CLASSES if c in classes]
    others = [c for c in classes if c not in known and is_wbc(c)]
    outside = [c for c in (*NON_WBC_CLASSES, *EXTRA_NON_WBC) if c in classes]
    return (*known, *others, *outside, *[c for c in classes if c not in known + others + outside])
