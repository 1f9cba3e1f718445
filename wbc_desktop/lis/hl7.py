"""The HL7 v2.5.1 ORU^R01 message of a signed case, built and validated with hl7apy (STRICT: every segment,
field and data type checked against the 2.5.1 structures), and the ACK a receiver answers with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from wbc_desktop import __version__
from wbc_desktop.core.classes import display_name
from wbc_desktop.core.differential import Differential
from wbc_desktop.core.integrity import sha256_text
from wbc_desktop.lis.codes import PANEL, WBC_COUNT, Code

SENDING_APPLICATION = "WBC Desktop"


class HL7Error(Exception):
    """A message could not be built, or an answer is not an acceptable ACK."""


@dataclass(frozen=True)
class ResultHeader:
    """What the message says besides the results: who, which sample, when."""

    control_id: str  # unique per message (MSH-10); the ACK must echo it
    sample_id: str  # the specimen / patient link the LIS files the result under
    case_id: int
    signed_by: str
    signed_at: str  # ISO time of the signature
    collected: str = ""  # ISO time the sample was taken, when known
    lab_name: str = ""
    incomplete_reason: str | None = None
    amended: bool = False  # a corrected result (OBR-25/OBX-11 "C") replacing one sent before
    receiving_application: str = "LIS"
    receiving_facility: str = ""


def hl7_time(iso: str) -> str:
    """An ISO time as HL7's DTM (YYYYMMDDHHMMSS+ZZZZ)."""
    moment = dt.datetime.fromisoformat(iso)
    text = moment.strftime("%Y%m%d%H%M%S")
    return text + moment.strftime("%z") if moment.tzinfo else text


def _coded(code: Code | tuple[str, str, str]) -> str:
    code = code if isinstance(code, Code) else Code(*code)
    return f"{escape(code.code)}^{escape(code.text)}^{code.system}"


def escape(text: str) -> str:
    """HL7 escape sequences for the delimiters, so a sample ID or name cannot break the message's structure."""
    replacements = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
    for plain, escaped in replacements:
        text = text.replace(plain, escaped)
    return " ".join(text.split())  # no carriage returns (segment ends) inside a field


def oru_message(header: ResultHeader, differential: Differential, codes: dict[str, tuple[Code, Code | None]]) -> str:
    """The ORU^R01 message (ER7, segments ended by CR) with one OBX per reported figure: % of leukocytes and, when
    the WBC count is known, the absolute count of each white-cell class; per 100 leukocytes for NRBC and the other
    objects outside the differential; the WBC count; an NTE for an incomplete sign-out."""
    status = "C" if header.amended else "F"
    message = Message("ORU_R01", version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
    message.msh.msh_3 = escape(SENDING_APPLICATION)
    message.msh.msh_4 = escape(header.lab_name or "LAB")
    message.msh.msh_5 = escape(header.receiving_application)
    if header.receiving_facility:
        message.msh.msh_6 = escape(header.receiving_facility)
    message.msh.msh_7 = hl7_time(header.signed_at)
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = escape(header.control_id)
    message.msh.msh_11 = "P"
    message.msh.msh_12 = "2.5.1"
    message.msh.msh_18 = "UNICODE UTF-8"  # the bytes on the wire are UTF-8 (a name may be "Sézary cell")
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    patient = result.add_group("ORU_R01_PATIENT")
    patient.pid.pid_1 = "1"
    patient.pid.pid_3 = f"{escape(header.sample_id)}^^^{escape(header.lab_name or 'LAB')}"
    patient.pid.pid_5 = "UNKNOWN"  # the LIS holds the patient; the sample ID links to it
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    order.obr.obr_3 = f"{header.case_id}^{escape(SENDING_APPLICATION)}"
    order.obr.obr_4 = _coded(PANEL)
    if header.collected:
        order.obr.obr_7 = hl7_time(header.collected)
    order.obr.obr_22 = hl7_time(header.signed_at)
    order.obr.obr_25 = status
    order.obr.obr_32 = escape(header.signed_by)
    observations = list(_observations(differential, codes))
    for number, (code, value, units, reference, flag) in enumerate(observations, start=1):
        group = order.add_group("ORU_R01_OBSERVATION")
        obx = group.obx
        obx.obx_1 = str(number)
        obx.obx_2 = "NM"
        obx.obx_3 = _coded(code)
        obx.obx_5 = value
        obx.obx_6 = units
        if reference:
            obx.obx_7 = reference
        if flag:
            obx.obx_8 = flag
        obx.obx_11 = status
        obx.obx_14 = hl7_time(header.signed_at)
        obx.obx_16 = escape(header.signed_by)
        obx.obx_18 = f"{escape(SENDING_APPLICATION)} {__version__}"
    if header.incomplete_reason:
        note = order.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = escape(f"INCOMPLETE: signed out before every check passed. Reason: {header.incomplete_reason}")
    try:
        message.validate()
        return message.to_er7()
    except HL7apyException as error:
        raise HL7Error(f"the HL7 message does not validate: {error}") from None


def local_code(label: str) -> Code:
    """A local code (system ``L``) for a class or category no code table names, e.g. a lab's own category:
    ``WBCD-X`` and 8 hex digits of the label's SHA-256, so that it is ASCII, at most 14 characters (CWE-1 allows
    20) and never one of the table's codes whatever the lab calls its category; the text carries the name."""
    digest = sha256_text(label)[:8].upper()
    return Code(f"WBCD-X{digest}", display_name(label), "L")


def _observations(differential: Differential, codes: dict[str, tuple[Code, Code | None]]):
    """(code, value, units, reference interval, flag) per figure, in the differential's order."""
    for row in differential.rows:
        percent_code, absolute_code = codes.get(row.label) or (local_code(row.label), None)
        reference = f"{row.reference[0]:g}-{row.reference[1]:g}" if row.reference else ""
        yield percent_code, f"{row.percent:.1f}", "%^percent^UCUM", reference, row.flag
        if absolute_code is not None and row.absolute is not None:
            yield absolute_code, f"{row.absolute:.2f}", "10*9/L^10*9/L^UCUM", "", ""
    for label in differential.non_wbc:
        per_100 = differential.per_100_wbc(label)
        if per_100 is None:  # no white cell counted
            continue
        code = (codes.get(label) or (local_code(label), None))[0]
        yield code, f"{per_100:.1f}", "/100{WBCs}^per 100 leukocytes^UCUM", "", ""
    if differential.wbc_count is not None:
        count = differential.corrected_wbc_count if differential.wbc_count_corrected else differential.wbc_count
        yield Code(*WBC_COUNT), f"{count:.2f}", "10*9/L^10*9/L^UCUM", "", ""


def parse(er7: str) -> Message:
    """Parse a message strictly (what the tests and a receiver do); HL7Error if it is not valid 2.5.1."""
    try:
        return parse_message(er7.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT)
    except HL7apyException as error:
        raise HL7Error(f"not a valid HL7 message: {error}") from None


def check_ack(answer: str, control_id: str) -> None:
    """An ACK accepting the message with ``control_id`` (MSA-1 AA or CA); HL7Error saying what came back else.

    Read by hand on purpose: a LIS answers in whatever HL7 version it speaks (2.3, 2.4, …), and reading MSA-1..3
    needs no structure definitions (the app bundles hl7apy's 2.5.1 ones only: the installer's size)."""
    segments = [segment for segment in answer.replace("\n", "\r").split("\r") if segment.strip()]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise HL7Error(f"the LIS answered something that is not an HL7 ACK: {answer[:60]!r}")
    separator, component = segments[0][3], segments[0][4]
    msa = next((segment.split(separator) for segment in segments if segment.startswith("MSA" + separator)), None)
    if msa is None or len(msa) < 3:
        raise HL7Error("the LIS answered something that is not an HL7 ACK (no MSA segment)")
    code, echoed = msa[1].split(component)[0], msa[2].split(component)[0]
    text = msa[3] if len(msa) > 3 else ""
    if echoed != control_id:
        raise HL7Error(f"the LIS acknowledged message {echoed!r}, not {control_id!r}")
    if code not in ("AA", "CA"):
        raise HL7Error(f"the LIS refused the message ({code}{': ' + text if text else ''})")
