"""Evaluate the WBC finder on the BCCD smear fields (VOC boxes, WBC only) and, where a field's labels.csv row names
one subtype, the classification of the detected cell.

    python scripts/evaluate_fields.py [../shared/data/bccd/fields] [--iou 0.5] [--out docs/fields.md] [--classify]
"""

from __future__ import annotations

import argparse
import csv
import xml.etree.ElementTree as ET
from pathlib import Path

from wbc_desktop.core.fields import FinderSettings, crop_cell, find_wbcs
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
        if classifier is not None and number in subtypes and len(truth) == 1 and matched[0] is not None:
            crop = crop_cell(rgb, detections[matched[0]])
            probabilities = classifier.predict([crop])[0]
            predicted = classifier.classes[int(probabilities.argmax())]
            subtype_total += 1
            subtype_correct += predicted == subtypes[number]
            key = (subtypes[number], predicted)
            confusion[key] = confusion.get(key, 0) + 1
    return {
        "true_positives": tp,
        "false_positives": fp,
        "missed": fn,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "subtype_total": subtype_total,
        "subtype_correct": subtype_correct,
        "confusion": confusion,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fields", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "bccd" / "fields")
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--classify", action="store_true", help="also classify detected cells (bundled model)")
    args = parser.parse_args()
    classifier = None
    if args.classify:
        from wbc_desktop.inference.litert import load_classifier

        classifier = load_classifier()
    result = evaluate(args.fields, FinderSettings(), args.iou, classifier)
    print(
        f"WBC boxes: recall {result['recall']:.4f}, precision {result['precision']:.4f} at IoU >= {args.iou} "
        f"(TP {result['true_positives']}, FP {result['false_positives']}, missed {result['missed']})"
    )
    if classifier is not None and result["subtype_total"]:
        accuracy = result["subtype_correct"] / result["subtype_total"]
        counts = f"{result['subtype_correct']}/{result['subtype_total']}"
        print(f"subtype accuracy of detected cells: {accuracy:.4f} ({counts})")
        for (true, predicted), count in sorted(result["confusion"].items()):
            print(f"  {true:>11} -> {predicted:<11} {count}")


if __name__ == "__main__":
    main()
