"""How well does 'adapt' do on another lab? Fit lab profiles on 25/50/100 BCCD crops (seeded, stratified where
possible) and measure accuracy on the remaining crops, against the bundled model zero-shot.

    python scripts/adapt_experiment.py [../shared/data/bccd/crops] [--sizes 25 50 100] [--seeds 0 1 2]
        [--head correction|scratch|finetune]

``finetune`` runs the same :func:`wbc_desktop.training.finetune.fine_tune` as ``adapt --head finetune`` (needs the
``train`` extra) and reports each split from one view of a cell, averaged over its 8 flips and turns, and those
averaged with the stain-robust model's calls on the cells the app routes to it (what the profile does:
:func:`wbc_desktop.inference.lab_profile.blend_with_robust`).
Without the held-back check ``adapt`` also runs, so one fit per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wbc_desktop.core.lab_profile import fit_head
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.inference.lab_profile import read_outputs
from wbc_desktop.inference.litert import load_classifier

ROOT = Path(__file__).resolve().parent.parent


def stratified_sample(labels: list[str], size: int, seed: int) -> np.ndarray:
    """``size`` indices, spread over the classes in proportion but at least 1 per class where possible."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    by_class = {c: rng.permutation([i for i, label in enumerate(labels) if label == c]).tolist() for c in classes}
    quota = {c: max(1, round(size * len(by_class[c]) / len(labels))) for c in classes}
    while sum(quota.values()) > size:
        quota[max(quota, key=quota.get)] -= 1
    chosen = [i for c in classes for i in by_class[c][: quota[c]]]
    rest = [i for c in classes for i in by_class[c][quota[c] :]]
    chosen += rng.permutation(rest)[: size - len(chosen)].tolist()
    return np.array(sorted(chosen))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("crops", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "bccd" / "crops")
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--head",
        choices=("correction", "scratch", "finetune"),
        default="correction",
        help="correction: the bundled model's logits plus a fitted linear correction (what 'adapt' does); "
        "scratch: a new head over the features alone (profiles before 2.0); finetune: tune the whole model",
    )
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default: adapt's)")
    parser.add_argument(
        "--lab-model", action="store_true", help="steps grow with the verified cells, as the window's lab model's"
    )
    parser.add_argument(
        "--curve",
        type=int,
        nargs="+",
        help="instead: simulate the window's lab model: cells arrive in a seeded random order, the first N feed "
        "the library, a version is fitted at each N (steps grow, blend chosen on held-back cells) and put in use "
        "only if it does at least as well on its held-back cells; the crops after the largest N are scored",
    )
    parser.add_argument(
        "--shift",
        choices=("none", "hue-white-balance"),
        default="none",
        help="with --curve: restain every crop first (hue -15 degrees, warm white balance): a lab where the "
        "stain-robust model is weaker",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="instead: K-fold cross-validation of the head over all crops (how far a head over the model's "
        "features can go with many cells)",
    )
    parser.add_argument(
        "--montage",
        type=Path,
        help="with finetune: a PNG of the eosinophils the first fit calls neutrophils (original crops)",
    )
    parser.add_argument(
        "--write-split",
        type=Path,
        metavar="DIR",
        help="only copy the first size's and seed's crops to DIR/verified and the others to DIR/rest (class "
        "folders), to run 'wbc-desktop adapt' and 'evaluate --profile' on them",
    )
    args = parser.parse_args()
    data = load_labelled_set(args.crops)
    if args.curve:
        return lab_model_curve(args, data)
    if args.write_split:
        return write_split(data, args.sizes[0], args.seeds[0], args.write_split)
    base = load_classifier()
    classes = list(base.classes)
    base_logits, features, kept = read_outputs(base, data.paths)
    labels = [data.labels[i] for i in kept]
    targets = np.array([classes.index(label) for label in labels])
    counts = {c: labels.count(c) for c in classes}
    print(f"{len(targets)} crops; {counts}; head: {args.head}")
    zero_shot = float(np.mean(base_logits.argmax(axis=1) == targets))
    print(f"zero-shot (bundled model, all crops): {zero_shot:.4f}")
    if args.head == "finetune":
        return fine_tune_experiment(args, base, data, kept, labels, targets)
    if args.folds:
        return cross_validate(args, base, base_logits, features, targets)
    for size in args.sizes:
        accuracies = []
        for seed in args.seeds:
            chosen = stratified_sample(labels, size, seed)
            rest = np.setdiff1d(np.arange(len(targets)), chosen)
            prior = (
                {"base_logits": base_logits[chosen], "base_temperature": base.temperature}
                if args.head == "correction"
                else {}
            )
            head = fit_head(features[chosen], targets[chosen], classes, **prior)
            predicted = head.logits(features[rest], base_logits[rest]).argmax(axis=1)
            accuracies.append(float(np.mean(predicted == targets[rest])))
        print(
            f"adapt on {size:>3} verified crops: accuracy on the other {len(targets) - size} crops "
            f"{np.mean(accuracies):.4f} (seeds {args.seeds}: {', '.join(f'{a:.4f}' for a in accuracies)})"
        )


def shifted_copy(paths: list[Path], out: Path) -> list[Path]:
    """The crops with a hue rotation of -15 degrees and a warm white balance, as PNG files in ``out``."""
    from PIL import Image

    from wbc_desktop.core.images import load_image

    out.mkdir(parents=True, exist_ok=True)
    shifted = []
    for index, path in enumerate(paths):
        hsv = np.asarray(Image.fromarray(load_image(path)).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) - round(15 * 256 / 360)) % 256
        rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB")).astype(np.float32)
        rgb = np.clip(rgb * np.array([1.06, 1.0, 0.86], np.float32), 0, 255).astype(np.uint8)
        target = out / f"{index:04d}.png"
        Image.fromarray(rgb).save(target)
        shifted.append(target)
    return shifted


def lab_model_curve(args, data) -> None:
    """The window's loop (gui/lab_adapter.py, core/lab_model.py) on the crops, one seeded arrival order a seed."""
    import tempfile

    from wbc_desktop.core.images import load_image
    from wbc_desktop.core.lab_model import LabModelVersion, replaces
    from wbc_desktop.inference.lab_profile import load_with_profile
    from wbc_desktop.training.finetune import FineTuneConfig, build_tuned_profile

    base = load_classifier()
    classes = list(base.classes)
    work = Path(tempfile.mkdtemp(prefix="lab-model-curve-"))
    paths = list(data.paths)
    if args.shift != "none":
        paths = shifted_copy(paths, work / "shifted")
    labels = list(data.labels)
    largest = max(args.curve)
    results: dict[int, list[float]] = {n: [] for n in args.curve}  # the version in use, as the window decides
    fitted: dict[int, list[float]] = {n: [] for n in args.curve}  # the version fitted at that size
    for seed in args.seeds:
        order = np.random.default_rng(seed).permutation(len(paths))
        scored = order[largest:]
        images = [load_image(paths[i]) for i in scored]
        truth = np.array([classes.index(labels[i]) for i in scored])
        zero_shot = float(np.mean(base.predict(images).argmax(axis=1) == truth))
        in_use = None  # (LabModelVersion, its accuracy on the later crops)
        for size in sorted(args.curve):
            chosen = order[:size]
            folder = work / f"seed{seed}-lab-v{size}"
            config = FineTuneConfig(steps=None, robust_weight=None, seed=seed)
            profile = build_tuned_profile(
                base.model_dir,
                [paths[i] for i in chosen],
                [labels[i] for i in chosen],
                folder.name,
                folder,
                config=config,
            )
            profile.save(folder)
            validation = profile.validation
            held = validation.get("accuracy")
            candidate = LabModelVersion(
                size, folder.name, folder, size, held, validation.get("bundled_accuracy"),
                int(validation.get("cells_held_back", 0)), "fine-tuned",
            )  # fmt: skip
            own = float(np.mean(load_with_profile(base, folder).predict(images).argmax(axis=1) == truth))
            use, why = replaces(candidate, in_use[0] if in_use else None)
            if use:
                in_use = (candidate, own)
            accuracy = in_use[1] if in_use else zero_shot
            results[size].append(accuracy)
            fitted[size].append(own)
            print(
                f"  seed {seed}, {size:>3} cells: fitted held-back {held:.3f} on {candidate.held_back} (blend "
                f"{profile.model['robust_weight']}, {validation['fine_tune']['steps']} steps), {own:.4f} on the "
                f"{len(scored)} later crops; {'used' if use else 'not used: ' + why}; in use "
                f"{in_use[0].name if in_use else 'none'}: {accuracy:.4f} (zero-shot {zero_shot:.4f})",
                flush=True,
            )
    for size in sorted(args.curve):
        values = results[size]
        print(
            f"lab model at {size:>3} verified cells ({args.shift}): in use {np.mean(values):.4f} mean over seeds "
            f"{args.seeds} (min {min(values):.4f}, max {max(values):.4f}); the version fitted at that size "
            f"{np.mean(fitted[size]):.4f}",
            flush=True,
        )


def cross_validate(args, base, base_logits, features, targets) -> None:
    folds = np.random.default_rng(0).permutation(len(targets)) % args.folds
    correct = 0
    for fold in range(args.folds):
        train, test = folds != fold, folds == fold
        prior = (
            {"base_logits": base_logits[train], "base_temperature": base.temperature}
            if args.head == "correction"
            else {}
        )
        head = fit_head(features[train], targets[train], list(base.classes), **prior)
        correct += int(np.sum(head.logits(features[test], base_logits[test]).argmax(axis=1) == targets[test]))
    print(f"{args.folds}-fold cross-validation, {args.head} head: accuracy {correct / len(targets):.4f}")


def save_montage(paths: list[Path], out: Path, side: int = 128, per_row: int = 12) -> None:
    from PIL import Image

    from wbc_desktop.core.images import load_image

    rows = max(1, -(-len(paths) // per_row))
    canvas = Image.new("RGB", (per_row * side, rows * side), "white")
    for index, path in enumerate(paths):
        cell = Image.fromarray(load_image(path)).resize((side, side), Image.Resampling.BILINEAR)
        canvas.paste(cell, ((index % per_row) * side, (index // per_row) * side))
    canvas.save(out)
    print(f"{len(paths)} crops -> {out}")


def write_split(data, size: int, seed: int, out: Path) -> None:
    import shutil

    chosen = set(stratified_sample(data.labels, size, seed).tolist())
    for index, (path, label) in enumerate(zip(data.paths, data.labels, strict=True)):
        folder = out / ("verified" if index in chosen else "rest") / label
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    print(f"{len(chosen)} verified crops in {out / 'verified'}, {len(data.paths) - len(chosen)} in {out / 'rest'}")


def fine_tune_experiment(args, base, data, kept, labels, targets) -> None:
    from wbc_desktop.inference.base import softmax
    from wbc_desktop.inference.lab_profile import app_calls, blend_with_robust
    from wbc_desktop.inference.manifest import KERAS_FILE
    from wbc_desktop.training.finetune import (
        FineTuneConfig,
        fine_tune,
        keras_logits,
        read_lab_cells,
        read_replay_cells,
        steps_for,
    )

    images, _ = read_lab_cells([data.paths[i] for i in kept], base.manifest.input_size, base.manifest.view)
    app, foreign, _ = app_calls(base, [data.paths[i] for i in kept])
    print(f"{int(foreign.sum())} of {len(foreign)} crops go to the stain-robust model")
    replay = read_replay_cells(base.model_dir, base.classes)
    for size in args.sizes:
        single, dihedral, blended = [], [], []
        for seed in args.seeds:
            chosen = stratified_sample(labels, size, seed)
            rest = np.setdiff1d(np.arange(len(targets)), chosen)
            steps = steps_for(size) if args.lab_model else args.steps
            config = FineTuneConfig(seed=seed, **({"steps": steps} if steps else {}))
            tuned = fine_tune(base.model_dir / KERAS_FILE, images[chosen], targets[chosen], replay, config)
            single.append(float(np.mean(keras_logits(tuned, images[rest]).argmax(axis=1) == targets[rest])))
            logits = keras_logits(tuned, images[rest], True)
            predicted = logits.argmax(axis=1)
            dihedral.append(float(np.mean(predicted == targets[rest])))
            profile_calls = blend_with_robust(softmax(logits), app[rest], foreign[rest], config.robust_weight)
            profile_calls = profile_calls.argmax(axis=1)
            blended.append(float(np.mean(profile_calls == targets[rest])))
            if args.montage and len(single) == 1 and size == args.sizes[0]:
                eosinophil, neutrophil = (list(base.classes).index(name) for name in ("eosinophil", "neutrophil"))
                wrong = rest[(targets[rest] == eosinophil) & (predicted == neutrophil)]
                save_montage([data.paths[kept[i]] for i in wrong[:24]], args.montage)
            print(
                f"  {size} cells, {config.steps} steps, seed {seed}: {single[-1]:.4f} one view, "
                f"{dihedral[-1]:.4f} 8 views (= blend 0), "
                f"{blended[-1]:.4f} with the stain-robust calls",
                flush=True,
            )
        print(
            f"fine-tune on {size:>3} verified crops: accuracy on the other {len(targets) - size} crops "
            f"{np.mean(blended):.4f} as the profile calls them, with the stain-robust calls "
            f"({', '.join(f'{a:.4f}' for a in blended)}); the tuned model alone {np.mean(dihedral):.4f} "
            f"averaged over 8 views, {np.mean(single):.4f} from one view",
            flush=True,
        )


if __name__ == "__main__":
    main()
