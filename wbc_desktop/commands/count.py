"""``wbc-desktop count``: stream images through the model, print the differential, write CSV/JSON."""

from __future__ import annotations

import argparse
import sys

from wbc_desktop.commands.common import (
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_USAGE,
    OUT_OF_DOMAIN_MESSAGE,
    STAIN_ROBUST,
    Progress,
    classified_by,
    domain_summary,
    domain_threshold,
    load_model_or_explain,
    model_info,
)
from wbc_desktop.core.atomic import ExportError
from wbc_desktop.core.classes import display_order
from wbc_desktop.core.differential import format_table, summarize
from wbc_desktop.core.export import ExportCell, build_report, write_csv, write_json
from wbc_desktop.core.images import discover
from wbc_desktop.core.pipeline import classify_iter
from wbc_desktop.core.review import review_reason


def run_count(args: argparse.Namespace) -> int:
    if args.um_per_px is not None and not 0.01 <= args.um_per_px <= 10:
        print("error: --um-per-px is the camera's micrometres per pixel: a number from 0.01 to 10", file=sys.stderr)
        return EXIT_USAGE
    classifier = load_model_or_explain(args.model, args.profile)
    if classifier is None:
        return EXIT_NOTHING
    threshold = classifier.review_threshold
    found = discover(args.paths)
    errors = [(str(path), message) for path, message in found.errors]
    cells: list[ExportCell] = []
    progress = Progress(len(found.images))
    done = 0
    scores: list[float] = []
    run = classify_iter(found.images, classifier, batch_size=args.batch_size, mode=args.mode, um_per_px=args.um_per_px)
    for result in run:
        source = str(result.source) if result.source is not None else None
        if result.ok:
            cell = ExportCell(str(result.path), result.label, result.probabilities, source=source, box=result.box)
            made_by = None
            if result.domain_score is not None:
                made_by = classified_by(classifier, result.domain_score)
                cell.extra = {
                    "domain_score": round(result.domain_score, 4),
                    "unusual": result.domain_score > 1.0,
                    "classified_by": made_by,
                }
                scores.append(result.domain_score)
            if result.px_per_rbc is not None:  # the finder's ruler for this field: a red cell's diameter
                cell.extra["px_per_rbc"] = round(result.px_per_rbc, 1)
            cell.review = review_reason(result.probabilities.values(), threshold, made_by == STAIN_ROBUST)
            cells.append(cell)
        else:
            errors.append((str(result.path), result.error or "unknown error"))
        done += result.first_of_image  # progress counts images, not the cells found in fields
        progress.update(done)
    progress.close()

    classes = display_order(classifier.classes)
    differential = summarize(
        (cell.label for cell in cells), classes=classes, wbc_count=args.wbc_count, target=args.target
    )
    print(format_table(differential))
    for path, message in errors:
        print(f"skipped {path}: {message}", file=sys.stderr)
    report = build_report(
        cells,
        differential,
        model=model_info(classifier),
        errors=errors,
        extra={"mode": args.mode, "domain": domain_summary(scores, domain_threshold(classifier))},
    )
    print(f"{len(cells)} cells classified from {report['images']} images, {len(errors)} skipped", file=sys.stderr)
    print(f"{report['needs_review']} of {len(cells)} calls need a person's review", file=sys.stderr)
    if report["domain"]["flag"]:
        print(f"warning: {OUT_OF_DOMAIN_MESSAGE}", file=sys.stderr)
    try:
        if args.json:
            write_json(args.json, report)
        if args.csv:
            write_csv(args.csv, cells, classes, differential)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOTHING
    return EXIT_OK if cells else EXIT_NOTHING
