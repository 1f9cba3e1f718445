"""Lab settings as plain data (the GUI persists them with QSettings; the CLI uses the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wbc_desktop.core.classes import ALL_CLASSES, CATEGORIES, DEFAULT_KEY_MAP, category_label, category_name_problem
from wbc_desktop.core.differential import DEFAULT_REFERENCE_RANGES
from wbc_desktop.core.pipeline import MODES


@dataclass
class LabSettings:
    reference_ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_REFERENCE_RANGES))
    target_count: int = 100
    target_sound: bool = False  # a sound when a case reaches its target count (the bar's colour always changes)
    review_threshold: float | None = None  # None: the model manifest's calibrated threshold
    key_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_KEY_MAP))
    operator: str = ""
    mode: str = "auto"  # cell | field | auto: how an image is read (single cell or smear field)
    profile: str = ""  # name of a lab profile (folder under the user data folder's profiles/); "" = none
    lab_name: str = ""  # printed on reports, sent as the sending facility to the LIS
    lab_address: str = ""
    lis_folder: str = ""  # a folder the LIS picks HL7 files up from ("" = none)
    lis_host: str = ""  # the LIS's MLLP listener ("" = none)
    lis_port: int = 0
    um_per_px: float | None = None  # the camera's calibration for smear fields; None: measured from the red cells
    # The lab's categories beyond the model's classes, in use (filed into by key, menu or drag); the rest hidden.
    categories: tuple[str, ...] = CATEGORIES
    # Categories the lab made itself (label -> counts in the differential; False: reported per 100 WBC). Never
    # removed once made, only taken out of use, so that a case filed into one keeps its meaning.
    lab_categories: dict[str, bool] = field(default_factory=dict)

    @property
    def known_categories(self) -> tuple[str, ...]:
        """The catalogue's categories and the lab's own, in use or not."""
        return (*CATEGORIES, *self.lab_categories)

    def effective_threshold(self, model_threshold: float) -> float:
        return self.review_threshold if self.review_threshold is not None else model_threshold

    def to_dict(self) -> dict:
        return {
            "reference_ranges": {k: list(v) for k, v in self.reference_ranges.items()},
            "target_count": self.target_count,
            "target_sound": self.target_sound,
            "review_threshold": self.review_threshold,
            "key_map": dict(self.key_map),
            "operator": self.operator,
            "mode": self.mode,
            "profile": self.profile,
            "lab_name": self.lab_name,
            "lab_address": self.lab_address,
            "lis_folder": self.lis_folder,
            "lis_host": self.lis_host,
            "lis_port": self.lis_port,
            "um_per_px": self.um_per_px,
            "categories": list(self.categories),
            "lab_categories": dict(self.lab_categories),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LabSettings:
        """Build from stored data, falling back to defaults for anything missing or malformed."""
        settings = cls()
        try:
            ranges = data.get("reference_ranges") or {}
            for label, pair in ranges.items():
                low, high = float(pair[0]), float(pair[1])
                if low <= high:
                    settings.reference_ranges[label] = (low, high)
            target = int(data.get("target_count", settings.target_count))
            settings.target_count = target if target in (100, 200) else 100
            settings.target_sound = data.get("target_sound") is True
            threshold = data.get("review_threshold")
            settings.review_threshold = float(threshold) if threshold not in (None, "") else None
            own = data.get("lab_categories") or {}
            for label, counts in own.items() if isinstance(own, dict) else ():
                # a name that is not a valid new one (edited by hand, a clash) or whose kind is not true/false
                # ("false" is a word, not False) is dropped, the others kept; a case already filed into one keeps
                # the kind it was filed with (Case.category_kinds)
                taken = (*ALL_CLASSES, *settings.known_categories)
                if isinstance(counts, bool) and category_name_problem(str(label), taken) is None:
                    settings.lab_categories[category_label(str(label))] = counts
            keys = {str(k): str(v) for k, v in (data.get("key_map") or {}).items()}
            # each key the lab set is kept if it names a class or category (those saved before keys 6-8 existed
            # too: the new keys get their defaults); one that no longer does gets its default, unless that would
            # give two keys one class: then the defaults
            known = {*ALL_CLASSES, *settings.known_categories}
            merged = dict(settings.key_map)
            merged.update({key: label for key, label in keys.items() if key in merged and label in known})
            if len(set(merged.values())) == len(merged):
                settings.key_map = merged
            settings.operator = str(data.get("operator", ""))
            mode = str(data.get("mode", "auto"))
            settings.mode = mode if mode in MODES else "auto"
            settings.profile = str(data.get("profile", ""))
            for key in ("lab_name", "lab_address", "lis_folder", "lis_host"):
                setattr(settings, key, str(data.get(key, "") or ""))
            chosen = data.get("categories")
            if isinstance(chosen, list):  # known names only, in the catalogue's order; settings before it: all
                in_use = {str(c) for c in chosen}
                settings.categories = tuple(name for name in settings.known_categories if name in in_use)
            scale = data.get("um_per_px")
            settings.um_per_px = float(scale) if scale not in (None, "") and 0.01 <= float(scale) <= 10 else None
            port = int(data.get("lis_port", 0) or 0)
            settings.lis_port = port if 0 < port < 65536 else 0
        except (TypeError, ValueError, AttributeError, IndexError):
            return cls()
        return settings
