"""The PDF report of a case (QTextDocument rendered by QPdfWriter): the laboratory, sample, dates, results with
units, reference intervals and flags, who performed and who released it with the signature's meaning, a montage
of the cells per class, and the hashes that tie it to the record."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QUrl
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument
from PySide6.QtWidgets import QApplication

from wbc_desktop import __version__
from wbc_desktop.core.atomic import ExportError
from wbc_desktop.core.case import Case
from wbc_desktop.core.classes import display_title
from wbc_desktop.core.differential import Differential
from wbc_desktop.core.fields import Detection, crop_cell
from wbc_desktop.core.images import ImageLoadError, load_image, load_preview
from wbc_desktop.core.status import VERIFIED, Status
from wbc_desktop.gui.worker import thumbnail_image


def lab_of(case: Case, lab_name: str, lab_address: str) -> tuple[str, str]:
    """The laboratory printed: as signed (frozen with the signature), else as set now."""
    frozen = case.info.signed_context or {}
    if case.info.signed and "lab_name" in frozen:
        return str(frozen.get("lab_name") or ""), str(frozen.get("lab_address") or "")
    return lab_name, lab_address


def report_html(
    case: Case, differential: Differential, lab_name: str = "", lab_address: str = "", montage: str = ""
) -> str:
    info = case.info
    model = info.model or {}
    review = case.review_counts()
    escape = html.escape
    rows = "".join(
        f"<tr><td>{escape(display_title(row.label))}</td><td align=center>{row.count}</td>"
        f"<td align=center>{row.percent:.1f}</td>"
        f"<td align=center>{row.ci_low:.1f}–{row.ci_high:.1f}</td>"
        f"<td align=center>{'' if row.absolute is None else f'{row.absolute:.2f}'}</td>"
        f"<td align=center>{'' if row.reference is None else f'{row.reference[0]:g}–{row.reference[1]:g}'}</td>"
        f"<td align=center><b>{row.flag}</b></td></tr>"
        for row in differential.rows
    )
    signed = (
        f"Signed out by <b>{escape(info.signed_by or '')}</b>"
        + (f" ({escape(info.signer_id)})" if info.signer_id else "")
        + f" at {escape((info.signed_at or '').replace('T', ' '))}"
        + (f"; meaning of the signature: <b>{escape(info.signature_meaning)}</b>" if info.signature_meaning else "")
        if info.signed
        else "NOT SIGNED OUT: preliminary report"
    )
    incomplete = (
        f"<p style='color:#b91c1c; font-size:large'><b>INCOMPLETE</b>: signed out before every check passed. "
        f"Reason given: {escape(info.incomplete_reason)}</p>"
        if info.incomplete_reason
        else ""
    )
    person = sum(review.get(key, 0) for key in VERIFIED)
    unreviewed = review.get(Status.AUTO, 0)
    what_was_reviewed = (
        f"Machine classification; {person} of {len(case.cells)} cells verified by a person "
        f"({review.get('reviewed', 0)} confirmed one by one, {review.get('accepted', 0)} accepted with their "
        f"gallery page, {review.get('reclassified', 0)} reclassified, {review.get('excluded', 0)} excluded)"
        + (f"; {unreviewed} model calls not reviewed." if unreviewed else ".")
    )
    model_text = escape(
        f"{model.get('name', '?')} {model.get('version', '')} (sha256 {str(model.get('sha256', ''))[:12]}…)"
    )
    wbc = f"{info.wbc_count:.2f} ×10⁹/L" if info.wbc_count else "not entered"
    outside = non_wbc_html(differential)
    if differential.ig_total is not None:
        count, percent = differential.ig_total
        outside = (
            f"<p>Immature granulocytes, all (IG with its sub-types): <b>{count}</b> ({percent:.1f} %)"
            f"{f' <b>{differential.ig_flag}</b>' if differential.ig_flag else ''}</p>" + outside
        )
    amended = (
        f"<p style='color:#1d4ed8; font-size:large'><b>AMENDED REPORT</b>: replaces the report of case "
        f"{info.amends}. Reason: {escape(info.amend_reason or '')}</p>"
        if info.amends
        else ""
    )
    superseded = (
        f"<p style='color:#b91c1c; font-size:large'><b>SUPERSEDED</b> by the amended report of case "
        f"{info.superseded_by}: do not use this report.</p>"
        if info.superseded_by
        else ""
    )
    lab = lab_of(case, lab_name, lab_address)
    collected = (info.collected or "").replace("T", " ") or "not recorded"
    reported = (info.signed_at or "")[:16].replace("T", " ") if info.signed else "not released (preliminary)"
    released = (
        f"{escape(info.signed_by or '')}"
        + (f" ({escape(info.signer_id)})" if info.signer_id else "")
        + (f", {escape(info.signature_meaning)}" if info.signature_meaning else "")
        if info.signed
        else "—"
    )
    return f"""
    {superseded}{amended}{incomplete}
    <table width=100% cellspacing=0 cellpadding=0><tr>
      <td><span style="font-size:x-large"><b>{escape(lab[0] or "Laboratory")}</b></span><br>{escape(lab[1])}</td>
      <td align=right><span style="font-size:large"><b>WBC differential</b></span><br>
          manual count on microscope images, machine-assisted (LOINC 24318-8)</td>
    </tr></table>
    <hr>
    <table cellspacing=0 cellpadding=2 width=100%>
      <tr><td><b>Sample / patient ID</b></td><td>{escape(info.sample_id or "(no ID)")}</td>
          <td><b>Specimen</b></td><td>peripheral blood smear</td></tr>
      <tr><td><b>Collected</b></td><td>{escape(collected)}</td>
          <td><b>Received (case opened)</b></td><td>{escape(info.created[:16].replace("T", " "))}</td></tr>
      <tr><td><b>Reported</b></td><td>{escape(reported)}</td>
          <td><b>Total WBC</b></td><td>{wbc}</td></tr>
      <tr><td><b>Performed by</b></td><td>{escape(info.operator or "")}</td>
          <td><b>Released by</b></td><td>{released}</td></tr>
      <tr><td><b>Model</b></td><td colspan=3>{model_text}</td></tr>
    </table>
    <p></p>
    <table border=1 cellspacing=0 cellpadding=4 width=100%>
      <tr><th>Class</th><th>Count</th><th>%</th><th>95% CI (%)</th><th>×10⁹/L</th><th>Reference %</th><th>Flag</th></tr>
      {rows}
      <tr><td><b>Total counted</b></td><td align=center><b>{differential.total}</b></td>
          <td colspan=5>target {differential.target}; excluded {differential.excluded}</td></tr>
    </table>
    {outside}
    <p>Cells reviewed (confirmed): {review.get("reviewed", 0)} · reclassified: {review.get("reclassified", 0)} ·
       excluded: {review.get("excluded", 0)} · model calls not reviewed: {review.get("auto", 0)}.
       95% CI: exact Clopper–Pearson (as Rümke's tables). H/L: outside the lab's reference interval.</p>
    {montage}
    <p>{signed}</p>
    <p style="color:#555">WBC Desktop {__version__}. {what_was_reviewed}</p>
    <p style="color:#555; font-size:small">{record_anchor(case)}</p>
    """


def record_anchor(case: Case) -> str:
    """The hashes that tie this paper to the record (core.integrity): a copy outside the database to check it by."""
    info = case.info
    head = html.escape(case.store.head(case.id))
    if info.content_hash:
        return f"Record seal <tt>{html.escape(info.content_hash)}</tt> · sign-out audit entry <tt>{head}</tt>"
    return f"Audit trail head <tt>{head}</tt> (preliminary: changes after this report extend it)"


def non_wbc_html(differential: Differential) -> str:
    """Objects outside the differential (nucleated red cells, platelets) per 100 WBC, and the WBC count
    corrected for nucleated red cells; empty for a model without such classes."""
    if not differential.non_wbc:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(display_title(label))}</td><td align=center>{count}</td>"
        f"<td align=center>{'–' if per_100 is None else f'{per_100:.1f}'}</td></tr>"
        for label, count in differential.non_wbc.items()
        for per_100 in [differential.per_100_wbc(label)]
    )
    corrected = differential.corrected_wbc_count
    note = ""
    if corrected is not None:
        used = (
            "used for the absolute counts"
            if differential.wbc_count_corrected
            else "not applied: NRBC below 5 per 100 WBC"
        )
        note = f"<p>WBC count corrected for nucleated red cells: <b>{corrected:.2f} ×10⁹/L</b> ({used}).</p>"
    return f"""<p></p>
    <table border=1 cellspacing=0 cellpadding=4>
      <tr><th>Not white cells</th><th>Count</th><th>Per 100 WBC</th></tr>
      {rows}
    </table>{note}"""


def ensure_application():
    """Fonts and text layout need a Qt application; the CLI's self-test has none of its own."""
    return QApplication.instance() or QApplication([])


MONTAGE_PER_CLASS = 8  # cells printed per class (CellaVision prints a page of each class; one row here)
MONTAGE_SIZE = 44  # document pixels (about 12 mm on the page): eight fit one row beside the class name


def montage_html(document: QTextDocument, case: Case, differential: Differential) -> str:
    """The cells of each class as small images (the report shows what was counted, as analysers' reports do);
    images are added to ``document`` as resources. A cell whose image cannot be read is left out, and said."""
    fields: dict[str, np.ndarray] = {}
    labels = [row.label for row in differential.rows if row.count] + [
        label for label, count in differential.non_wbc.items() if count
    ]
    blocks, unreadable = [], 0
    for label in labels:
        cells = [cell for cell in case.cells if cell.label == label]
        images = []
        for cell in cells[:MONTAGE_PER_CLASS]:
            try:
                if cell.source and cell.box:
                    if cell.source not in fields:
                        fields[cell.source] = load_image(cell.source)
                    array = crop_cell(fields[cell.source], Detection(tuple(cell.box), 1.0, 0.0))
                else:
                    array = load_preview(cell.path, MONTAGE_SIZE * 4)
            except (ImageLoadError, OSError, ValueError):
                unreadable += 1
                continue
            url = QUrl(f"cell://{cell.id}")
            document.addResource(QTextDocument.ResourceType.ImageResource, url, thumbnail_image(array, 128))
            images.append(f'<img src="{url.toString()}" width={MONTAGE_SIZE} height={MONTAGE_SIZE}>')
        if images:
            shown = f"{len(images)} of {len(cells)}" if len(cells) > len(images) else f"{len(cells)}"
            blocks.append(
                f"<tr><td width=90><b>{html.escape(display_title(label))}</b><br>{shown}</td>"
                f"<td>{''.join(images)}</td></tr>"
            )
    if not blocks:
        return ""
    missing = f"<p style='color:#555'>{unreadable} cell image(s) could not be read for this montage.</p>"
    table = "<p><b>Cells by class</b></p><table cellspacing=0 cellpadding=1>" + "".join(blocks) + "</table>"
    return table + (missing if unreadable else "")


def write_pdf(
    path: str | os.PathLike[str],
    case: Case,
    differential: Differential,
    lab_name: str = "",
    lab_address: str = "",
    montage: bool = True,
) -> None:
    """Render the report (one page for a usual case, more when the montage needs it); written to a temp file,
    checked to be a complete PDF, and renamed, like every export."""
    target = Path(path)
    if not target.parent.is_dir():
        raise ExportError(f"cannot write {target}: folder {target.parent} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        writer = QPdfWriter(temporary)
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
        writer.setResolution(300)
        writer.setTitle(f"WBC differential {case.info.sample_id}")
        document = QTextDocument()
        font = document.defaultFont()
        font.setPointSizeF(8.0)  # a usual case (5-8 classes and their cells) fits one A4 page
        document.setDefaultFont(font)
        cells = montage_html(document, case, differential) if montage else ""
        document.setHtml(report_html(case, differential, lab_name, lab_address, cells))
        document.print_(writer)
        del writer  # flushes and closes the file
        # QPdfWriter reports no write error (a full disk left a truncated file that "succeeded"): check the end
        with open(temporary, "rb") as written:
            written.seek(max(0, os.path.getsize(temporary) - 1024))
            if b"%%EOF" not in written.read():
                raise OSError(28, "the PDF was not written completely (is the disk full?)")
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {error.strerror or error}") from None
