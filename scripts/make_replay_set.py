"""Write the model store's replay cells: a few PBC *training* cells per class, as the model sees them.

``adapt --head finetune`` mixes them into every step so that a lab's fifty cells do not make the tuned model
forget a class they lack (wbc_desktop/training/finetune.py). PBC images are CC BY 4.0 (Acevedo et al. 2020,
doi:10.1016/j.dib.2020.105474); the model card carries the attribution.

    python scripts/make_replay_set.py [--per-class 40] [--model model_store]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.images import load_image
from wbc_desktop.core.lab_profile import REPLAY_FILE, pack_cells
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.inference.manifest import read_manifest

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "pbc_wbc5")
    parser.add_argument("--model", type=Path, default=ROOT / "model_store")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    manifest = read_manifest(args.model)
    data = load_labelled_set(args.data, args.data / "split.csv")
    rng = np.random.default_rng(args.seed)
    images, labels = [], []
    for name in manifest.classes:
        rows = [
            i
            for i, (label, split) in enumerate(zip(data.labels, data.splits, strict=True))
            if label == name and split == "train"
        ]
        for index in sorted(rng.choice(rows, args.per_class, replace=False)):
            images.append(model_view(load_image(data.paths[index]), manifest.input_size, manifest.view))
            labels.append(name)
    target = args.model / REPLAY_FILE
    pack_cells(target, images, labels)
    size = target.stat().st_size / 1e6
    print(f"{len(labels)} cells ({args.per_class} per class, train split) -> {target} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
