"""What a person has done to a cell's call: the one vocabulary of cell statuses (stored as these strings)."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    AUTO = "auto"  # the model's call, not yet looked at by a person
    REVIEWED = "reviewed"  # confirmed one by one
    RECLASSIFIED = "reclassified"  # a person gave another label
    EXCLUDED = "excluded"  # not counted (artefact, smudge, not a WBC)
    ACCEPTED = "accepted"  # verified with the rest of a gallery page (confirm page), not one by one


VERIFIED = (Status.REVIEWED, Status.RECLASSIFIED, Status.EXCLUDED, Status.ACCEPTED)  # a person acted on it
