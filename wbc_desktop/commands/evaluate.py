"""``wbc-desktop evaluate``: the paper's report for a labelled folder, through the app's runtime (LiteRT)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from wbc_desktop.commands.common import (
    EXIT_NOTHING,
    EXIT_OK,
    EXIT_USAGE,
    STAIN_ROBUST,
    Progress,
    classified_by,
    domain_threshold,
    load_model_or_explain,
    model_info,
)
from wbc_desktop.core.atomic import atomic_write_text
from wbc_desktop.core.domain import batch_flags
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.core.metrics import evaluation_summary
from wbc_desktop.core.pipeline import classify_iter
from wbc_desktop.core.review import review_reason


def format_report(report: dict) -> str:
    width = max(14, *(len(name) + 2 for name in report["per_class"]))
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, row in report["per_class"].items():
        scores = f"{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
        lines.append(f"{name:<{width}}{scores}{row['support']:>10}")
    for average in ("macro", "weighted"):
        row = report[average]
        lines.append(
            f"{average + ' avg':<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
            f"{report['support']:>10}"
        )
    lines.append(f"ECE: {report['ece']:.4f}")
    lines.append("confusion matrix (rows true, columns predicted): " + ", ".join(report["classes"]))
    lines.extend("  " + " ".join(f"{v:5d}" for v in row) for row in report["confusion_matrix"])
    return "\n".join(lines)


def labelled_images(data_dirs: list[Path], split_csvs: list[Path] | None, split: str) -> tuple[list, list, int]:
    """Paths and labels of one split over one or more class-per-folder sets (each with its own split CSV, in the
    same order: e.g. pbc_wbc5 and pbc_extra for the eight classes), and the duplicates removed."""
    paths, labels, removed = [], [], 0
    for data_dir, split_csv in zip(data_dirs, split_csvs or [None] * len(data_dirs), strict=True):
        data = load_labelled_set(data_dir, split_csv)
        chosen = (data.paths, data.labels) if split == "all" else data.subset(split)
        paths += list(chosen[0])
        labels += list(chosen[1])
        removed += data.duplicates_removed
    return paths, labels, removed


def review_summary(probabilities: np.ndarray, targets: np.ndarray, flagged: np.ndarray) -> dict:
    """How many calls the review rule sends to a person, and how accurate the calls it lets through are."""
    accepted = ~flagged
    right = probabilities.argmax(axis=1) == targets
    return {
        "cells": int(flagged.sum()),
        "fraction": float(flagged.mean()) if len(flagged) else 0.0,
        "accepted": int(accepted.sum()),
        "accepted_accuracy": float(right[accepted].mean()) if accepted.any() else None,
    }


def run_evaluate(args: argparse.Namespace) -> int:
    data_dirs: list[Path] = args.data_dir
    missing = [str(folder) for folder in data_dirs if not folder.is_dir()]
    if missing:
        print(f"error: not a folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    if args.split_csv and len(args.split_csv) != len(data_dirs):
        print("error: give one --split-csv per data folder, in the same order", file=sys.stderr)
        return EXIT_USAGE
    classifier = load_model_or_explain(args.model, args.profile)
    if classifier is None:
        return EXIT_NOTHING
    split = args.split or ("test" if args.split_csv else "all")
    paths, labels, duplicates_removed = labelled_images(data_dirs, args.split_csv, split)
    classes = list(classifier.classes)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        print(f"error: classes {unknown} are not among the model's {classes}", file=sys.stderr)
        return EXIT_USAGE
    targets, probabilities, errors, scores, review, made_by = [], [], [], [], [], []
    progress = Progress(len(paths), "evaluating")
    for done, (result, label) in enumerate(zip(classify_iter(paths, classifier), labels, strict=True), 1):
        if result.ok:
            targets.append(classes.index(label))
            probabilities.append([result.probabilities[c] for c in classes])
            if result.domain_score is not None:
                scores.append(result.domain_score)
                made_by.append(classified_by(classifier, result.domain_score))
            foreign = result.domain_score is not None and made_by[-1] == STAIN_ROBUST
            review.append(review_reason(probabilities[-1], classifier.review_threshold, foreign) is not None)
        else:
            errors.append({"path": str(result.path), "error": result.error})
        progress.update(done)
    progress.close()
    if not targets:
        print("error: no image could be classified", file=sys.stderr)
        return EXIT_NOTHING
    report = evaluation_summary(np.array(probabilities), np.array(targets), classes)
    report["domain"] = batch_flags(scores, domain_threshold(classifier))
    report["needs_review"] = review_summary(np.array(probabilities), np.array(targets), np.array(review))
    report["classified_by"] = dict(Counter(made_by))
    report.update(
        model=model_info(classifier),
        data_dir=", ".join(str(folder) for folder in data_dirs),
        split=split,
        duplicates_removed=duplicates_removed,
        errors=errors,
    )
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.report / "metrics.json", json.dumps(report, indent=2) + "\n")
        try:
            from wbc_desktop.training.plots import plot_confusion

            plot_confusion(
                report["confusion_matrix"],
                classes,
                args.report / "confusion_matrix.png",
                f"{classifier.name} {classifier.version} on {' + '.join(d.name for d in data_dirs)} ({split}), "
                f"accuracy {report['accuracy']:.2%}",
            )
        except ImportError:
            print("note: matplotlib is not installed; confusion-matrix PNG skipped", file=sys.stderr)
    print(format_report(report))
    for error in errors:
        print(f"skipped {error['path']}: {error['error']}", file=sys.stderr)
    if report["domain"]["batches"]:
        flagged = report["domain"]
        print(
            f"out-of-domain warning: {flagged['flagged']}/{flagged['batches']} batches of {flagged['batch_size']} "
            f"flagged ({flagged['flagged_fraction']:.1%}); median image score {flagged['median_score']:.2f}"
        )
    if report["classified_by"]:
        print("classified by: " + ", ".join(f"{name} {count}" for name, count in report["classified_by"].items()))
    flagged = report["needs_review"]
    accepted = "-" if flagged["accepted_accuracy"] is None else f"{flagged['accepted_accuracy']:.4f}"
    print(
        f"needs review: {flagged['cells']} of {len(targets)} calls ({flagged['fraction']:.1%}); accuracy of the "
        f"{flagged['accepted']} accepted without review: {accepted}"
    )
    print(f"images: {len(targets)} ({split} split), skipped: {len(errors)}")
    print(f"accuracy: {report['accuracy']:.4f}")
    print(f"macro-F1: {report['macro']['f1']:.4f}")
    return EXIT_OK
