"""Export the stain-robust ensemble from member runs and attach it to a model bundle (needs the 'train' extra).

The members are ordinary training runs, 64 px, 8 epochs, two stain jitters, three seeds (about 10 minutes each on
a 2-core CPU):

    for augment in labs labs-hue; do for seed in 0 1 2; do
      wbc-desktop train ../shared/data/pbc_wbc5 --split-csv ../shared/data/pbc_wbc5/split.csv --epochs 8 \\
        --image-size 64 --augment $augment --seed $seed --out runs/robust/${augment}_s$seed --name wbc-member
    done; done
    python scripts/build_robust_model.py runs/robust/* --out runs/robust/ensemble \\
        --external bccd=../shared/data/bccd/crops --attach model_store

``--route-above`` is on the out-of-domain score's scale: each of its parts is divided by its 99th percentile on
the PBC validation split, so 1.0 means "more unusual than 99 % of validation cells". The default, 1.25, is the
batch warning's margin over validation and lies above every validation cell's score (the highest: 1.157), so
no PBC validation cell is routed; at 1.0, 20 of 823 were (all 20 right either way).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.core.pipeline import classify_iter
from wbc_desktop.inference.litert import LiteRTClassifier
from wbc_desktop.training.robust import attach_robust, card_section, export_robust, write_card_section


def routed_accuracy(bundle: Path, paths: list[Path], labels: list[str]) -> dict:
    """Accuracy of the bundle as the app runs it (cells routed by their out-of-domain score)."""
    classifier = LiteRTClassifier(bundle)
    right = routed = 0
    for result, label in zip(classify_iter(paths, classifier), labels, strict=True):
        right += result.label == label
        routed += bool(classifier.routed([result.domain_score])[0])
    return {"accuracy": right / len(labels), "routed": routed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="member run folders (each with trained.keras)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ensemble's .tflite and manifest")
    parser.add_argument("--external", action="append", default=[], help="NAME=FOLDER, measured, never trained on")
    parser.add_argument("--attach", type=Path, help="model bundle to attach the ensemble to (copied into it)")
    parser.add_argument("--route-above", type=float, default=1.25)
    parser.add_argument(
        "--views",
        type=int,
        default=4,
        help="views of each cell the app averages (of 8): 4 since 2.2.0, the most that reach 60 foreign cells/s on "
        "2 cores (docs/figures.md, *The stain-robust model*); measure again for new members",
    )
    args = parser.parse_args()
    runs = [run for run in args.runs if (run / "trained.keras").exists()]
    export_robust(runs, args.out, external_sets=dict(item.split("=", 1) for item in args.external))
    if args.attach:
        attach_robust(args.attach, args.out, args.route_above, args.views)
        print(f"attached to {args.attach} (cells scoring above {args.route_above} go to it)")
        config = json.loads((runs[0] / "training.json").read_text())["config"]
        pbc = load_labelled_set(config["data_dir"], config["split_csv"])
        combined = {"test": routed_accuracy(args.attach, *pbc.subset("test"))}
        for item in args.external:
            label, folder = item.split("=", 1)
            other = load_labelled_set(folder, None)
            combined[label] = routed_accuracy(args.attach, other.paths, other.labels)
        for label, row in combined.items():
            print(f"  routed, {label}: {row['accuracy']:.4f} ({row['routed']} cells to the stain-robust model)")
        robust = args.attach / "robust"
        metrics = json.loads((robust / "metrics.json").read_text())
        manifest = json.loads((robust / "manifest.json").read_text())
        write_card_section(
            args.attach / "MODEL_CARD.md", card_section(metrics, manifest, args.route_above, combined, args.views)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
