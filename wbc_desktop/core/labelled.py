"""Labelled image sets: class-per-folder layouts, split CSVs, de-duplication, stratified splits, array cache.

No TensorFlow here on purpose: building the cache and the splits is plain NumPy/Pillow so it can be tested fast.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.images import IMAGE_SUFFIXES, load_image, natural_key

SPLITS = ("train", "val", "test")


@dataclass
class LabelledSet:
    """Paths with labels and a split name each; ``classes`` is sorted, which fixes the model's output order."""

    paths: list[Path]
    labels: list[str]
    splits: list[str]
    classes: list[str]
    duplicates_removed: int = 0
    notes: list[str] = field(default_factory=list)

    def subset(self, split: str) -> tuple[list[Path], list[str]]:
        chosen = [i for i, s in enumerate(self.splits) if s == split]
        return [self.paths[i] for i in chosen], [self.labels[i] for i in chosen]

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {s: dict.fromkeys(self.classes, 0) for s in SPLITS}
        for label, split in zip(self.labels, self.splits, strict=True):
            table[split][label] += 1
        return table


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_class_folders(root: Path) -> list[tuple[Path, str]]:
    """``root/<class>/…image`` → (path, lower-case class name); any case of folder names is accepted."""
    items: list[tuple[Path, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = folder.name.strip().lower()
        for path in sorted(folder.rglob("*"), key=natural_key):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                items.append((path, label))
    return items


def stratified_split(labels: list[str], test_fraction: float, val_fraction: float, seed: int) -> list[str]:
    """Seeded stratified split: ``test_fraction`` of each class to test, ``val_fraction`` of the rest to val."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    splits = ["train"] * len(labels)
    for label in sorted(by_class):
        indices = by_class[label]
        rng.shuffle(indices)
        # At least one test and one val image per class whenever the class has enough for training too.
        n_test = max(1, round(len(indices) * test_fraction)) if len(indices) >= 3 and test_fraction else 0
        rest = len(indices) - n_test
        n_val = max(1, round(rest * val_fraction)) if rest >= 2 and val_fraction else 0
        for i in indices[:n_test]:
            splits[i] = "test"
        for i in indices[n_test : n_test + n_val]:
            splits[i] = "val"
    return splits


def load_labelled_set(
    root: str | Path,
    split_csv: str | Path | None = None,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> LabelledSet:
    """Read a class-per-folder set, optionally with a ``path,label,split`` CSV (paths relative to ``root``).

    Byte-identical files are removed before splitting (copies of one cell on both sides of a split inflate
    accuracy). Without a CSV the split is seeded and stratified: 80/20 by default, val carved from train.
    """
    root = Path(root)
    if split_csv is not None:
        with Path(split_csv).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        items = [(root / row["path"], row["label"].strip().lower(), row["split"].strip()) for row in rows]
    else:
        items = [(path, label, "") for path, label in scan_class_folders(root)]

    seen: dict[str, Path] = {}
    kept: list[tuple[Path, str, str]] = []
    for path, label, split in items:
        digest = _sha256(path)
        if digest in seen:
            continue
        seen[digest] = path
        kept.append((path, label, split))
    removed = len(items) - len(kept)

    paths = [p for p, _, _ in kept]
    labels = [label for _, label, _ in kept]
    if split_csv is None:
        splits = stratified_split(labels, test_fraction, val_fraction, seed)
    else:
        splits = [s for _, _, s in kept]
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"split CSV has unknown split names: {sorted(unknown)}")
    classes = sorted(Counter(labels))
    return LabelledSet(paths, labels, splits, classes, duplicates_removed=removed)


def build_array_cache(
    paths: list[Path], size: int, cache_file: Path | None = None, progress: bool = True, view: str = "resize"
) -> np.ndarray:
    """Decode every image once into the model's ``view`` (:func:`~wbc_desktop.core.canonical.model_view`) as a
    ``(N, size, size, 3)`` uint8 array, cached as ``.npy``."""
    if cache_file is not None and cache_file.exists():
        cached = np.load(cache_file, mmap_mode="r")
        if cached.shape == (len(paths), size, size, 3):
            return np.asarray(cached)
    array = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for index, path in enumerate(paths):
        array[index] = model_view(load_image(path), size, view)
        if progress and (index + 1) % 500 == 0:
            print(f"  decoded {index + 1}/{len(paths)}", flush=True)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp.npy")
        np.save(temporary, array)
        temporary.replace(cache_file)
    return array
