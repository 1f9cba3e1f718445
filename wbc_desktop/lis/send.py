"""A signed case to the LIS: its message (as signed: the frozen classes and reference ranges) queued in the
outbox and audited; delivery is :meth:`Outbox.deliver`, run off the GUI thread."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from wbc_desktop.core.case import Case, case_report
from wbc_desktop.core.classes import ALL_CLASSES
from wbc_desktop.lis.codes import result_codes
from wbc_desktop.lis.hl7 import HL7Error, ResultHeader, oru_message
from wbc_desktop.lis.outbox import Outbox

CODES_FILE = "lis_codes.json"  # a lab's own observation codes, in the data folder (lis.codes)


def queue_case(case: Case, outbox: Outbox, who: str, lab_name: str = "", codes_dir: Path | None = None) -> str:
    """Build, validate and queue the ORU^R01 of a signed case; its control ID. Only a signed case is sent."""
    if not case.info.signed:
        raise HL7Error("only a signed-out case is sent to the LIS")
    context = case.info.signed_context or {}
    classes = tuple(context.get("classes") or ALL_CLASSES)  # a case signed before contexts were stored: all
    _, differential, _ = case_report(case, classes)
    stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S%f")
    control_id = f"WBCD{case.id}-{stamp}"
    header = ResultHeader(
        control_id=control_id,
        sample_id=case.info.sample_id or f"case-{case.id}",
        case_id=case.id,
        signed_by=case.info.signed_by or "",
        signed_at=case.info.signed_at or "",
        lab_name=lab_name,
        incomplete_reason=case.info.incomplete_reason,
        amended=case.info.amends is not None,
        collected=case.info.collected or "",
    )
    try:
        codes = result_codes(codes_dir / CODES_FILE if codes_dir else None)
    except ValueError as error:
        raise HL7Error(str(error)) from None
    message = oru_message(header, differential, codes)
    outbox.put(control_id, message)
    case.record_export("hl7", control_id, who)
    return control_id
