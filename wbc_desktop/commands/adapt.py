"""``wbc-desktop adapt``: fit a lab profile (a new head + temperature over the model's features) on verified cells."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wbc_desktop.cli import EXIT_NOTHING, EXIT_OK, EXIT_USAGE, Progress
from wbc_desktop.commands.common import load_model_or_explain, model_info
from wbc_desktop.core.adapt import Profile, fit_head
from wbc_desktop.core.images import ImageLoadError, load_image
from wbc_desktop.core.labelled import load_labelled_set, stratified_split
from wbc_desktop.core.metrics import evaluation_summary, fit_temperature
from wbc_desktop.inference.base import softmax
from wbc_desktop.paths import model_store_dir


def extract_features(classifier, paths: list[Path], batch: int = 16) -> tuple[np.ndarray, list[int]]:
    """Pooled features of each readable image, and the indices of those images."""
    features, kept = [], []
    progress = Progress(len(paths), "reading features")
    for start in range(0, len(paths), batch):
        images, indices = [], []
        for index in range(start, min(start + batch, len(paths))):
            try:
                images.append(load_image(paths[index]))
                indices.append(index)
            except ImageLoadError as error:
                print(f"skipped {paths[index]}: {error}", file=sys.stderr)
        if images:
            features.append(classifier.logits_and_features(images)[1])
            kept.extend(indices)
        progress.update(min(start + batch, len(paths)))
    progress.close()
    return (np.concatenate(features) if features else np.zeros((0, classifier.feature_size))), kept


def run_adapt(args: argparse.Namespace) -> int:
    if not args.data_dir.is_dir():
        print(f"error: not a folder: {args.data_dir}", file=sys.stderr)
        return EXIT_USAGE
    if args.out.resolve() == model_store_dir().resolve() or (args.model and args.out.resolve() == args.model.resolve()):
        print("error: a lab profile is stored beside the model, never over it: choose another --out", file=sys.stderr)
        return EXIT_USAGE
    base = load_model_or_explain(args.model)
    if base is None:
        return EXIT_NOTHING
    data = load_labelled_set(args.data_dir)
    classes = list(base.classes)
    unknown = sorted(set(data.labels) - set(classes))
    if unknown:
        print(f"error: folders {unknown} are not among the model's classes {classes}", file=sys.stderr)
        return EXIT_USAGE
    features, kept = extract_features(base, data.paths)
    targets = np.array([classes.index(data.labels[i]) for i in kept])
    if len(targets) < 5:
        print("error: at least 5 readable verified cells are needed", file=sys.stderr)
        return EXIT_NOTHING
    splits = np.array(stratified_split([classes[t] for t in targets], args.holdout, 0.0, args.seed))
    train, held = splits == "train", splits == "test"
    validation: dict = {"cells_fitted": int(train.sum()), "cells_held_back": int(held.sum())}
    head = fit_head(features[train], targets[train], classes)
    if held.any():
        logits = head.logits(features[held])
        head_temperature = fit_temperature(logits, targets[held]) if held.sum() >= 20 else 1.0
        report = evaluation_summary(softmax(logits, head_temperature), targets[held], classes)
        base_report = evaluation_summary(
            base.predict([load_image(data.paths[kept[i]]) for i in np.flatnonzero(held)]), targets[held], classes
        )
        validation.update(
            accuracy=report["accuracy"],
            macro_f1=report["macro"]["f1"],
            base_model_accuracy=base_report["accuracy"],
            temperature=head_temperature,
            confusion_matrix=report["confusion_matrix"],
        )
    final = fit_head(features, targets, classes)  # all verified cells for the head that is used
    final.temperature = validation.get("temperature", 1.0)
    profile = Profile(args.name or args.out.name, model_info(base), final, validation, cells=len(targets))
    path = profile.save(args.out)
    print(json.dumps({k: v for k, v in validation.items() if k != "confusion_matrix"}, indent=2))
    print(f"lab profile written to {path}")
    if "accuracy" in validation:
        print(
            f"held-back accuracy: {validation['accuracy']:.4f} (bundled model on the same cells: "
            f"{validation['base_model_accuracy']:.4f})"
        )
    return EXIT_OK
