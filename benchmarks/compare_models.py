"""`count`'s pipeline speed of two or more model bundles, alternated in one run (ratios, not absolutes, carry).

    python benchmarks/compare_models.py model_store runs/model8e/bundle [--folder DIR] [--limit 300] [--rounds 2]

Each round classifies the same images with every bundle (``classify_iter``: cells prepared on both cores ahead of
the model, as `count` does) and prints images/s; a bundle's ``test_time_views`` and input size show up here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from wbc_desktop.core.images import discover
from wbc_desktop.core.pipeline import classify_iter
from wbc_desktop.inference.litert import LiteRTClassifier

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "pbc_wbc5" / "neutrophil")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    paths = discover([args.folder]).images[: args.limit]
    models = {str(bundle): LiteRTClassifier(bundle) for bundle in args.bundles}
    for round_number in range(args.rounds):
        for name, classifier in models.items():
            started = time.perf_counter()
            count = sum(1 for _ in classify_iter(paths, classifier))
            rate = count / (time.perf_counter() - started)
            views = classifier.test_time_views
            print(
                f"round {round_number}: {name} ({classifier.version}, {classifier.manifest.input_size} px, "
                f"{views} view{'s' if views > 1 else ''}): {rate:.1f} img/s"
            )


if __name__ == "__main__":
    main()
