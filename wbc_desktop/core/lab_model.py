"""The lab model: lab profiles refitted from the verified-cell library (core/cell_library.py), versioned v1, v2, ...

A version is a lab profile named ``lab-vN`` in the profiles folder (core/lab_profile.py: its head, its fine-tuned
model if any, the cells it was fitted on and its held-back accuracy). This module decides, without Qt or
TensorFlow, when a refit is due and whether a new version replaces the one in use; the window runs the fit in the
background (gui/lab_adapter.py) and the settings' profile names the version in use, so rolling back is choosing
an older version there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from wbc_desktop.core.lab_profile import ProfileError, load_profile

PREFIX = "lab-v"
FIRST_FIT = 50  # verified cells before the first lab model: 50 gave 0.76-0.88 on other labs' cells (figures.md)
GROWTH = 0.25  # then a refit when the library has grown by a quarter since the version in use was fitted
MIN_NEW_CELLS = 25
MIN_HELD_BACK = 20  # fewer held-back cells cannot tell two models apart (inference.lab_profile)


@dataclass(frozen=True)
class LabModelVersion:
    number: int
    name: str
    folder: Path
    cells: int
    accuracy: float | None  # on its held-back verified cells
    bundled_accuracy: float | None  # the app without a lab model, on the same cells
    held_back: int
    method: str  # "fine-tuned" or "correction head"

    def summary(self) -> str:
        """What the technician reads, e.g. "Lab model v3: 214 verified cells, held-back accuracy 0.91 (bundled
        model 0.52)"."""
        text = f"Lab model v{self.number}: {self.cells} verified cells"
        if self.accuracy is not None:
            text += f", held-back accuracy {self.accuracy:.2f}"
            if self.bundled_accuracy is not None:
                text += f" (bundled model {self.bundled_accuracy:.2f})"
        return text + ("" if self.method == "fine-tuned" else ", correction head")


def version_number(name: str) -> int | None:
    match = re.fullmatch(rf"{re.escape(PREFIX)}(\d+)", name)
    return int(match.group(1)) if match else None


def versions(profiles: Path) -> list[LabModelVersion]:
    """The lab model's versions found in ``profiles``, oldest first (unreadable ones are left out)."""
    found = []
    for folder in Path(profiles).glob(f"{PREFIX}*"):
        number = version_number(folder.name)
        if number is None:
            continue
        try:
            profile = load_profile(folder)
        except ProfileError:
            continue
        validation = profile.validation
        found.append(
            LabModelVersion(
                number,
                folder.name,
                folder,
                profile.cells,
                validation.get("accuracy"),
                validation.get("bundled_accuracy"),
                int(validation.get("cells_held_back", 0)),
                "fine-tuned" if profile.model is not None else "correction head",
            )
        )
    return sorted(found, key=lambda v: v.number)


def next_name(profiles: Path) -> str:
    numbers = [version_number(f.name) or 0 for f in Path(profiles).glob(f"{PREFIX}*")]
    return f"{PREFIX}{max(numbers, default=0) + 1}"


def refit_due(library_cells: int, in_use: LabModelVersion | None, latest: LabModelVersion | None = None) -> bool:
    """Enough new verified cells since the last fit (the latest version, used or not) to fit again."""
    last = latest or in_use
    if last is None:
        return library_cells >= FIRST_FIT
    grown = library_cells - last.cells
    return grown >= MIN_NEW_CELLS and grown >= GROWTH * last.cells


def replaces(candidate: LabModelVersion, in_use: LabModelVersion | None) -> tuple[bool, str]:
    """Whether a new version goes into use, and why. As *Adapt to my lab* does: not when it did worse than the
    app without a lab model on at least ``MIN_HELD_BACK`` held-back cells (with fewer it cannot be told, and
    adaptation helped on every other lab measured). And never worse than the version in use: refused when its
    held-back accuracy is below that version's by more than two standard errors of the two figures (each is
    measured on a few dozen cells: 0.79 on 20 cells against 0.90 on 10 is no evidence, and a guard that took it
    as such kept a model that scored 0.83 on later cells instead of one that scored 0.86), or when it has too few
    held-back cells to show anything against a version in use."""
    if candidate.accuracy is None:
        return False, "no held-back cells to measure it on"
    few = candidate.held_back < MIN_HELD_BACK
    bundled = candidate.bundled_accuracy
    if not few and bundled is not None and candidate.accuracy < bundled:
        return False, f"it does worse than the bundled model on its held-back cells ({bundled:.2f})"
    if in_use is not None and in_use.accuracy is not None and in_use.held_back < MIN_HELD_BACK:
        # the version in use was never shown to be good either: the one measured on more cells takes over
        if candidate.held_back >= in_use.held_back:
            return True, f"it is measured on more held-back cells than v{in_use.number} ({in_use.held_back})"
        return False, f"it is measured on fewer held-back cells than v{in_use.number}"
    if in_use is not None and in_use.accuracy is not None:
        if few:
            return False, f"too few held-back cells ({candidate.held_back}) to show it does as well as v{in_use.number}"
        margin = 2.0 * math.sqrt(
            candidate.accuracy * (1 - candidate.accuracy) / candidate.held_back
            + in_use.accuracy * (1 - in_use.accuracy) / max(in_use.held_back, 1)
        )
        if candidate.accuracy < in_use.accuracy - margin:
            return False, f"it does worse than v{in_use.number} in use ({in_use.accuracy:.2f})"
    return True, "it does at least as well as " + (f"v{in_use.number}" if in_use else "the bundled model")
