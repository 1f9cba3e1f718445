"""What cells that look foreign cost: the same number of PBC-like and foreign cells through the app's runtime,
measured in one run (the ratio is what to compare between machines).

    python benchmarks/routing_cost.py [PBC_FOLDER] [FOREIGN_FOLDER] [--limit N] [--repeat R]

Foreign cells (above the manifest's ``route_above``) run through the bundled model (for the out-of-domain
score) and then the stain-robust ensemble (each member on the manifest's views of each cell, 4 since 2.2.0, at
64 px); PBC-like cells only through the first.
Images are decoded beforehand, so the figures are the classifier's alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wbc_desktop.core.images import discover, load_image
from wbc_desktop.inference.litert import load_classifier

ROOT = Path(__file__).resolve().parent.parent


def cells_per_second(classifier, images, repeat: int, batch: int = 16) -> tuple[float, int]:
    """Best of ``repeat`` passes (cells/s), and how many cells the stain-robust model classified."""
    best, routed = 0.0, 0
    for _ in range(repeat):
        started, routed = time.perf_counter(), 0
        for start in range(0, len(images), batch):
            _, scores = classifier.analyse(images[start : start + batch])
            routed += int(classifier.routed(scores).sum())
        best = max(best, len(images) / (time.perf_counter() - started))
    return best, routed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pbc", nargs="?", type=Path, default=ROOT / "tests" / "fixtures" / "pbc")
    parser.add_argument("foreign", nargs="?", type=Path, default=ROOT / "tests" / "fixtures" / "bccd_crops")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    classifier = load_classifier()
    if classifier.robust is None:
        sys.exit("the bundled model has no stain-robust model")
    sets = {}
    for name, folder in (("PBC-like", args.pbc), ("foreign", args.foreign)):
        paths = discover([folder]).images[: args.limit]
        images = [load_image(path) for path in paths]
        while len(images) < args.limit:  # small fixture folders: repeat them to the same count
            images += images[: args.limit - len(images)]
        sets[name] = images
    rates = {}
    for name, images in sets.items():
        rates[name], routed = cells_per_second(classifier, images, args.repeat)
        print(f"{name:>9}: {rates[name]:7.1f} cells/s ({routed} of {len(images)} through the stain-robust model)")
    print(f"foreign / PBC-like throughput: {rates['foreign'] / rates['PBC-like']:.2f}")


if __name__ == "__main__":
    main()
