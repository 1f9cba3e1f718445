"""Which observation identifier each result of a differential is sent under.

LOINC terms of the *Manual Differential panel - Blood* (24318-8): the method-less "/100 leukocytes" (%) and
"[#/volume]" (10*9/L) terms, and 19048-8 for nucleated red cells per 100 leukocytes. Classes LOINC has no term for
here go as local codes (coding system ``L``). A lab whose LIS files results under other codes maps them in
``lis_codes.json`` in the data folder (same shape as :data:`RESULT_CODES`); confirm the codes with the LIS team
before the first release, as for any analyser interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PANEL = ("24318-8", "Manual Differential panel - Blood", "LN")
WBC_COUNT = ("26464-8", "Leukocytes [#/volume] in Blood", "LN")


@dataclass(frozen=True)
class Code:
    code: str
    text: str
    system: str = "LN"  # LN: LOINC; L: local


# class -> (percent code, absolute code or None). Percent of leukocytes for white cells; per 100 leukocytes for
# the objects outside the differential.
RESULT_CODES: dict[str, tuple[Code, Code | None]] = {
    "neutrophil": (
        Code("26511-6", "Neutrophils/100 leukocytes in Blood"),
        Code("26499-4", "Neutrophils [#/volume] in Blood"),
    ),
    "band_neutrophil": (
        Code("26508-2", "Band form neutrophils/100 leukocytes in Blood"),
        Code("26507-4", "Band form neutrophils [#/volume] in Blood"),
    ),
    "eosinophil": (
        Code("26450-7", "Eosinophils/100 leukocytes in Blood"),
        Code("26449-9", "Eosinophils [#/volume] in Blood"),
    ),
    "basophil": (
        Code("30180-4", "Basophils/100 leukocytes in Blood"),
        Code("26444-0", "Basophils [#/volume] in Blood"),
    ),
    "lymphocyte": (
        Code("26478-8", "Lymphocytes/100 leukocytes in Blood"),
        Code("26474-7", "Lymphocytes [#/volume] in Blood"),
    ),
    "monocyte": (
        Code("26485-3", "Monocytes/100 leukocytes in Blood"),
        Code("26484-6", "Monocytes [#/volume] in Blood"),
    ),
    "immature_granulocyte": (
        Code("38518-7", "Immature granulocytes/100 leukocytes in Blood"),
        Code("51584-1", "Immature granulocytes [#/volume] in Blood"),
    ),
    "blast": (Code("26446-5", "Blasts/100 leukocytes in Blood"), Code("30376-8", "Blasts [#/volume] in Blood")),
    "promyelocyte": (Code("26524-9", "Promyelocytes/100 leukocytes in Blood"), None),
    "myelocyte": (Code("26498-6", "Myelocytes/100 leukocytes in Blood"), None),
    "metamyelocyte": (Code("28541-1", "Metamyelocytes/100 leukocytes in Blood"), None),
    "variant_lymphocyte": (Code("26479-6", "Variant lymphocytes/100 leukocytes in Blood"), None),
    "other_wbc": (Code("51586-6", "Other cells/100 leukocytes in Blood by Manual count"), None),
    "plasma_cell": (Code("WBCD-PLASMA", "Plasma cells/100 leukocytes (WBC Desktop)", "L"), None),
    "erythroblast": (Code("19048-8", "Nucleated erythrocytes/100 leukocytes in Blood"), None),
    "platelet": (Code("WBCD-PLT100", "Platelets seen/100 leukocytes (WBC Desktop)", "L"), None),
    "smudge_cell": (Code("WBCD-SMUDGE", "Smudge cells/100 leukocytes (WBC Desktop)", "L"), None),
    "giant_platelet": (Code("WBCD-GIANTPLT", "Giant platelets/100 leukocytes (WBC Desktop)", "L"), None),
    "platelet_clump": (Code("WBCD-PLTCLUMP", "Platelet clumps/100 leukocytes (WBC Desktop)", "L"), None),
    "artefact": (Code("WBCD-ARTEFACT", "Artefacts/100 leukocytes (WBC Desktop)", "L"), None),
}


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC codes end in a mod-10 check digit (Luhn over the digits before the hyphen): a mistyped code fails."""
    number, _, check = code.partition("-")
    if not (number.isdigit() and check.isdigit() and len(check) == 1):
        return False
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10 == int(check)


def result_codes(lab_file: Path | None = None) -> dict[str, tuple[Code, Code | None]]:
    """The codes to send: the defaults, with the lab's own mapping (``{"class": [[code, text, system],
    [code, text, system] or null]}``) over them. A damaged file raises ValueError (the message says where)."""
    codes = dict(RESULT_CODES)
    if lab_file is None or not lab_file.is_file():
        return codes
    try:
        data = json.loads(lab_file.read_text(encoding="utf-8"))
        for label, (percent, absolute) in data.items():
            codes[str(label)] = (Code(*map(str, percent)), Code(*map(str, absolute)) if absolute else None)
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"LIS code mapping {lab_file} cannot be used: {error}") from None
    return codes
