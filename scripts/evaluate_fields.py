"""Evaluate the WBC finder on the BCCD smear fields (VOC boxes, WBC only) and, where a field's labels.csv row names
one subtype, the classification of the detected cell.

    python scripts/evaluate_fields.py [../shared/data/bccd/fields] [--iou 0.5] [--classify]
    python scripts/evaluate_fields.py --magnifications 1.0 0.7 0.5 0.35 --stain-shifts [--subset even]

The second form simulates other microscopes and stains (scripts/field_conditions.py): each field shrunk by the
factor with its neighbours tiled around it back to 640x480, then restained; it reports recall and precision at
IoU >= 0.5 per condition and how often the measured red-cell size (``px_per_rbc``) is within 15 % of the true
factor times BCCD's own (the median over the chosen fields as they are). Choose parameters with ``--subset even``;
report figures on all fields.
"""

from __future__ import annotations

import argparse
import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from field_conditions import STAIN_SHIFTS, tiled_scene

from wbc_desktop.core.classes import is_wbc
from wbc_desktop.core.fields import FinderSettings, analyse_field, crop_cell, find_wbcs
from wbc_desktop.core.images import load_image

ROOT = Path(__file__).resolve().parent.parent


def voc_boxes(path: Path, kind: str = "WBC") -> list[tuple[int, int, int, int]]:
    boxes = []
    for item in ET.parse(path).findall("object"):
        if item.findtext("name") == kind:
            box = item.find("bndbox")
            boxes.append(tuple(int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")))
    return boxes


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def match(predicted, truth, threshold: float) -> tuple[int, list[int | None]]:
    """Greedy matching by IoU (predictions best first); returns true positives and, per truth box, its match."""
    used: set[int] = set()
    matched: list[int | None] = [None] * len(truth)
    for p_index, box in enumerate(predicted):
        best, best_iou = None, threshold
        for t_index, true_box in enumerate(truth):
            if t_index not in used and (value := iou(box, true_box)) >= best_iou:
                best, best_iou = t_index, value
        if best is not None:
            used.add(best)
            matched[best] = p_index
    return len(used), matched


def recall_precision(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"recall": tp / (tp + fn) if tp + fn else 0.0, "precision": tp / (tp + fp) if tp + fp else 0.0}


def subtype_labels(fields: Path) -> dict[int, str]:
    labels = {}
    with (fields / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            category = (row.get("Category") or "").strip()
            if category and "," not in category:
                labels[int(row["Image"])] = category.lower()
    return labels


def evaluate(fields: Path, settings: FinderSettings, threshold: float, classifier=None) -> dict:
    tp = fp = fn = 0
    counted = {"tp": 0, "fp": 0, "fn": 0}  # the cells a differential counts: those not called platelet/NRBC
    subtype_total = subtype_correct = 0
    subtypes = subtype_labels(fields)
    confusion: dict[tuple[str, str], int] = {}
    for annotation in sorted((fields / "Annotations").glob("*.xml")):
        image_path = fields / "JPEGImages" / (annotation.stem + ".jpg")
        if not image_path.exists():
            continue
        truth = voc_boxes(annotation)
        rgb = load_image(image_path)
        detections = find_wbcs(rgb, settings)
        hits, matched = match([d.box for d in detections], truth, threshold)
        tp += hits
        fp += len(detections) - hits
        fn += len(truth) - hits
        number = int(annotation.stem.split("_")[-1])
        calls = []  # each detected cell's probabilities, once per field
        if classifier is not None:
            calls = classifier.predict([crop_cell(rgb, d) for d in detections]) if detections else []
            kept = [d.box for d, p in zip(detections, calls, strict=True) if is_wbc(classifier.classes[p.argmax()])]
            kept_hits, _ = match(kept, truth, threshold)
            counted["tp"] += kept_hits
            counted["fp"] += len(kept) - kept_hits
            counted["fn"] += len(truth) - kept_hits
        if classifier is not None and number in subtypes and len(truth) == 1 and matched[0] is not None:
            probabilities = calls[matched[0]]
            predicted = classifier.classes[int(probabilities.argmax())]
            subtype_total += 1
            subtype_correct += predicted == subtypes[number]
            key = (subtypes[number], predicted)
            confusion[key] = confusion.get(key, 0) + 1
    return {
        "true_positives": tp,
        "false_positives": fp,
        "missed": fn,
        **recall_precision(tp, fp, fn),
        "counted": {**counted, **recall_precision(counted["tp"], counted["fp"], counted["fn"])},
        "subtype_total": subtype_total,
        "subtype_correct": subtype_correct,
        "confusion": confusion,
    }


def load_fields(fields: Path) -> list[tuple[str, np.ndarray, list]]:
    out = []
    for annotation in sorted((fields / "Annotations").glob("*.xml")):
        image_path = fields / "JPEGImages" / (annotation.stem + ".jpg")
        if image_path.exists():
            out.append((annotation.stem, load_image(image_path), voc_boxes(annotation)))
    return out


def evaluate_conditions(
    fields: list,
    magnifications: list[float],
    shifts: list[str],
    subset: str,
    threshold: float,
    settings=FinderSettings(),
) -> list[dict]:
    """Recall, precision and the ruler's accuracy per (magnification, stain shift)."""
    chosen = [i for i, (name, _, _) in enumerate(fields) if subset == "all" or int(name.split("_")[-1]) % 2 == 0]
    sources = [(rgb, boxes) for _, rgb, boxes in fields]
    reference = float(np.nanmedian([analyse_field(sources[i][0], settings).px_per_rbc or np.nan for i in chosen]))
    rows = []
    for factor in magnifications:
        for shift in shifts:
            tp = fp = fn = 0
            scale_ok = scale_n = unmeasured = 0
            for i in chosen:
                scene = tiled_scene(sources[i:] + sources[:i], factor)
                rgb = STAIN_SHIFTS[shift](scene.rgb)
                analysis = analyse_field(rgb, settings)
                boxes = [d.box for d in analysis.detections]
                kept = [b for b in boxes if not any(iou(b, ignored) >= 0.3 for ignored in scene.ignored)]
                hits, _ = match(kept, scene.boxes, threshold)
                tp, fp, fn = tp + hits, fp + len(kept) - hits, fn + len(scene.boxes) - hits
                scale_n += 1
                if analysis.px_per_rbc is None:
                    unmeasured += 1
                else:
                    scale_ok += abs(analysis.px_per_rbc / (factor * reference) - 1.0) <= 0.15
            rows.append(
                {
                    "magnification": factor,
                    "stain": shift,
                    **recall_precision(tp, fp, fn),
                    "tp": tp,
                    "fp": fp,
                    "missed": fn,
                    "scale_within_15": scale_ok / scale_n,
                    "unmeasured": unmeasured,
                    "fields": scale_n,
                    "reference_px_per_rbc": reference,
                }
            )
            row = rows[-1]
            print(
                f"{factor:>5.2f}  {shift:<30} recall {row['recall']:.3f}  precision {row['precision']:.3f}  "
                f"(TP {tp}, FP {fp}, missed {fn})  scale within 15 %: {row['scale_within_15']:.3f}"
                + (f"  unmeasured {unmeasured}" if unmeasured else ""),
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fields", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "bccd" / "fields")
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--classify", action="store_true", help="also classify detected cells (bundled model)")
    parser.add_argument("--model", type=Path, help="a model bundle to classify with instead of the bundled one")
    parser.add_argument("--magnifications", type=float, nargs="+", help="simulate these magnifications (tiled)")
    parser.add_argument("--stain-shifts", nargs="*", help="simulate stain shifts (all when none named)")
    parser.add_argument("--subset", choices=("all", "even"), default="all", help="even: the fields to choose on")
    args = parser.parse_args()
    if args.magnifications is not None or args.stain_shifts is not None:
        shifts = ["as is"] if args.stain_shifts is None else (args.stain_shifts or list(STAIN_SHIFTS))
        magnifications = args.magnifications or [1.0]
        rows = evaluate_conditions(load_fields(args.fields), magnifications, shifts, args.subset, args.iou)
        worst = min(rows, key=lambda r: min(r["recall"], r["precision"]))
        print(
            f"worst: magnification {worst['magnification']}, {worst['stain']}: recall {worst['recall']:.3f}, "
            f"precision {worst['precision']:.3f}; reference red cell {rows[0]['reference_px_per_rbc']:.1f} px"
        )
        return
    classifier = None
    if args.classify:
        from wbc_desktop.inference.litert import load_classifier

        classifier = load_classifier(args.model)
    result = evaluate(args.fields, FinderSettings(), args.iou, classifier)
    print(
        f"WBC boxes: recall {result['recall']:.4f}, precision {result['precision']:.4f} at IoU >= {args.iou} "
        f"(TP {result['true_positives']}, FP {result['false_positives']}, missed {result['missed']})"
    )
    if classifier is not None:
        counted = result["counted"]
        print(
            f"as the differential counts them (cells called platelet or erythroblast left out): recall "
            f"{counted['recall']:.4f}, precision {counted['precision']:.4f} (TP {counted['tp']}, FP {counted['fp']})"
        )
    if classifier is not None and result["subtype_total"]:
        accuracy = result["subtype_correct"] / result["subtype_total"]
        counts = f"{result['subtype_correct']}/{result['subtype_total']}"
        print(f"subtype accuracy of detected cells: {accuracy:.4f} ({counts})")
        for (true, predicted), count in sorted(result["confusion"].items()):
            print(f"  {true:>11} -> {predicted:<11} {count}")


if __name__ == "__main__":
    main()
