"""What must be true before a differential is signed out: every model call verified by a person (the
needs-review bin empty among them) and the target count reached. Anything missing is listed; a person may still
sign out *incomplete* with a typed reason, which the report prints (as analysers' sign-out checks do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wbc_desktop.core.classes import is_wbc, outside_differential
from wbc_desktop.core.status import Status


@dataclass(frozen=True)
class SignOutCheck:
    unverified: tuple[int, ...]  # model calls no person confirmed, reclassified or excluded (cell ids)
    counted: int  # white cells in the differential
    target: int
    sample_id: str = "x"  # the case's sample ID: a report that names no sample cannot be filed to a patient

    @property
    def complete(self) -> bool:
        return not self.unverified and self.counted >= self.target and bool(self.sample_id.strip())

    def problems(self) -> list[str]:
        """What is missing, in words a technician acts on."""
        found = []
        if not self.sample_id.strip():
            found.append("no sample ID: type it in the Sample field (the report must name the sample)")
        if self.unverified:
            found.append(
                f"{len(self.unverified)} model call(s) not verified by a person (confirm, reclassify or exclude "
                "each cell; the Needs review column first)"
            )
        if self.counted < self.target:
            missing = self.target - self.counted
            found.append(f"{self.counted} of {self.target} white cells counted: count {missing} more")
        return found


class SignOutRefused(Exception):
    """A sign-out without a reason while the check lists problems."""

    def __init__(self, check: SignOutCheck):
        super().__init__("sign-out refused: " + "; ".join(check.problems()))
        self.check = check


def sign_out_check(case, lab_categories: Mapping[str, bool] | None = None) -> SignOutCheck:
    """The check for a :class:`~wbc_desktop.core.case.Case` as it is now; ``lab_categories``: the settings' own
    categories (label -> counts as a white cell), behind the case's record of them (Case.kinds_of_categories)."""
    outside = outside_differential(case.kinds_of_categories(lab_categories))
    unverified = tuple(cell.id for cell in case.cells if cell.status == Status.AUTO)
    counted = sum(1 for cell in case.cells if cell.label is not None and is_wbc(cell.label, outside))
    return SignOutCheck(unverified, counted, case.info.target, case.info.sample_id or "")
