"""How well does 'adapt' do on another lab? Fit lab profiles on 25/50/100 BCCD crops (seeded, stratified where
possible) and measure accuracy on the remaining crops, against the bundled model zero-shot.

    python scripts/adapt_experiment.py [../shared/data/bccd/crops] [--sizes 25 50 100] [--seeds 0 1 2]
        [--head correction|scratch]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wbc_desktop.core.adapt import fit_head  # noqa: E402
from wbc_desktop.core.labelled import load_labelled_set  # noqa: E402
from wbc_desktop.inference.litert import load_classifier  # noqa: E402
from wbc_desktop.inference.profile import read_outputs  # noqa: E402


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
        choices=("correction", "scratch"),
        default="correction",
        help="correction: the bundled model's logits plus a fitted linear correction (what 'adapt' does); "
        "scratch: a new head over the features alone (profiles before 2.0)",
    )
    args = parser.parse_args()
    base = load_classifier()
    data = load_labelled_set(args.crops)
    classes = list(base.classes)
    base_logits, features, kept = read_outputs(base, data.paths)
    labels = [data.labels[i] for i in kept]
    targets = np.array([classes.index(label) for label in labels])
    counts = {c: labels.count(c) for c in classes}
    print(f"{len(targets)} crops; {counts}; head: {args.head}")
    zero_shot = float(np.mean(base_logits.argmax(axis=1) == targets))
    print(f"zero-shot (bundled model, all crops): {zero_shot:.4f}")
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


if __name__ == "__main__":
    main()
