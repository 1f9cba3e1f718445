"""Measure the constants of the canonical view (wbc_desktop/core/canonical.py) on PBC training images, and show
how another lab's cells compare before and after normalisation.

    python scripts/fit_stain_reference.py [--pbc ../shared/data/pbc_wbc5] [--other ../shared/data/bccd/crops]

Prints, per set, the red share of optical density on nucleus-like and on other stained pixels (which sets
NUCLEAR_RED_SHARE) and the nuclear stain strength (which sets REFERENCE_STRENGTH: the PBC median) of framed
cells, and the strength after normalisation. Also writes a montage (originals beside their canonical views):
three rows of PBC, three of the other lab.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from wbc_desktop.core.canonical import (
    canonical_cell,
    framed_view,
    optical_density,
    stain_strength,
)
from wbc_desktop.core.fields import purple_excess
from wbc_desktop.core.images import load_image
from wbc_desktop.core.labelled import load_labelled_set

ROOT = Path(__file__).resolve().parent.parent

SIZE = 128


def describe(name: str, paths: list[Path], montage: list[np.ndarray]) -> None:
    nucleus_share, other_share, before, after = [], [], [], []
    for path in paths:
        image = load_image(path)
        framed = framed_view(image, SIZE)
        density = optical_density(framed)
        total = density.sum(axis=1)
        excess = purple_excess(framed).ravel()
        nucleus = excess > np.percentile(excess, 85)
        other = (excess < np.percentile(excess, 30)) & (total > 0.2)
        nucleus_share.append(np.median(density[nucleus, 0] / total[nucleus]))
        if other.any():
            other_share.append(np.median(density[other, 0] / total[other]))
        before.append(stain_strength(density))
        view = canonical_cell(image, SIZE)
        after.append(stain_strength(optical_density(view)))
        if len(montage) < 12 and len(before) % 4 == 1:
            montage.append(np.concatenate([np.asarray(Image.fromarray(image).resize((SIZE, SIZE))), view], axis=1))

    def q(values):
        return " / ".join(f"{v:.3f}" for v in np.percentile(values, [10, 50, 90]))

    print(f"{name} ({len(paths)} cells), 10th / 50th / 90th percentile")
    print(f"  red share of density, nucleus-like pixels: {q(nucleus_share)}")
    print(f"  red share of density, other stained pixels: {q(other_share)}")
    print(f"  nuclear stain strength, framed:     {q(before)}")
    print(f"  nuclear stain strength, normalised: {q(after)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbc", type=Path, default=ROOT.parent / "shared" / "data" / "pbc_wbc5")
    parser.add_argument("--other", type=Path, default=ROOT.parent / "shared" / "data" / "bccd" / "crops")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--montage", type=Path, default=Path("canonical_views.png"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pbc = load_labelled_set(args.pbc, args.pbc / "split.csv")
    train, _ = pbc.subset("train")
    other = load_labelled_set(args.other).paths
    montage: list[np.ndarray] = []
    for name, paths in (("PBC train", train), (f"other lab ({args.other.name})", other)):
        chosen = rng.choice(len(paths), min(args.sample, len(paths)), replace=False)
        pairs: list[np.ndarray] = []
        describe(name, [paths[i] for i in sorted(chosen)], pairs)
        montage += pairs
    rows = [np.concatenate(montage[i : i + 4], axis=1) for i in range(0, len(montage) - 3, 4)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.montage)
    print(f"montage (original | canonical view): {args.montage}")


if __name__ == "__main__":
    main()
