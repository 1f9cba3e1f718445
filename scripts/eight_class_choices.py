"""Choose how an eight-class model is run (test-time views, prior correction) on the val split, then report test.

A prior correction is a fixed shift of the logits: ``shift_logits.py`` writes it into the model's last bias.

The choices are made on val only (printed first); ``--test`` adds the test figures of every option so that the
note can show what the chosen one gives, never to choose. Keras models in, logits cached beside each model.

    python scripts/eight_class_choices.py runs/model8e/trained.keras --data runs/data8 --test
    python scripts/eight_class_choices.py runs/model8i/trained.keras runs/model10/trained.keras --border-sweep
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.core.metrics import confusion_matrix
from wbc_desktop.inference.base import DIHEDRAL_VIEWS, dihedral_views
from wbc_desktop.training.train import TrainConfig, cached_split, prior_shift, training_record

FIVE = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil")
# how much of the class weights' pull on the logits is undone (0: the model as trained, 1: the training split's priors)
PRIOR_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def view_logits(model_path: Path, images: np.ndarray, cache: Path) -> np.ndarray:
    """Logits of all eight views, shape (8, N, classes), cached."""
    if cache.exists():
        return np.load(cache)
    import keras

    model = keras.models.load_model(model_path, compile=False)
    logits_model = keras.Model(model.input, model.outputs[0])
    # the app's order (inference.base.dihedral_views): k views at run time are the first k here
    batch = dihedral_views(images.astype(np.float32))
    out = logits_model.predict(batch, batch_size=64, verbose=0).reshape(DIHEDRAL_VIEWS, len(images), -1)
    np.save(cache, out)
    return out


def figures(logits: np.ndarray, targets: np.ndarray, classes: list[str]) -> dict[str, float]:
    predicted = logits.argmax(axis=1)
    matrix = confusion_matrix(targets, predicted, len(classes))
    recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    precision = np.diag(matrix) / np.maximum(matrix.sum(axis=0), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    five = np.isin(targets, [classes.index(c) for c in FIVE])
    return {
        "union": float((predicted == targets).mean()),
        "macro_f1": float(f1.mean()),
        "ig": float(recall[classes.index("immature_granulocyte")]),
        "ery": float(recall[classes.index("erythroblast")]),
        "plt": float(recall[classes.index("platelet")]),
        "five": float((predicted[five] == targets[five]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path("runs/data8"))
    parser.add_argument("--test", action="store_true")
    parser.add_argument(
        "--border-sweep",
        action="store_true",
        help="also print val at 1 view with the IG logit moved from -1.5 to +1.5: how far IG recall and the "
        "five-class accuracy can be traded along the neutrophil/IG border",
    )
    args = parser.parse_args()
    data = load_labelled_set(args.data, args.data / "split.csv", seed=0)
    splits = ("val", "test") if args.test else ("val",)
    results: dict[str, dict] = {split: {} for split in splits}
    all_logits = {split: [] for split in splits}
    targets = {}
    weightings = set()
    for model_path in args.models:
        record = training_record(model_path)
        if record is None:
            raise SystemExit(f"no training.json beside {model_path}")
        assert record["classes"] == data.classes
        weightings.add(TrainConfig(**record["config"]).class_weighting)  # older records: the default, balanced
        size = record["config"]["image_size"]
        config = TrainConfig(data_dir=str(args.data), image_size=size, cache_dir=f"runs/cache8_{size}")
        for split in splits:
            _, images, targets[split] = cached_split(data, split, config)
            logits = view_logits(model_path, images, model_path.with_name(f"{model_path.stem}.{split}_view_logits.npy"))
            all_logits[split].append(logits)
    # the class weights of training move each logit by about log(weight); undoing it gives the
    # training split's own priors back (fewer normal neutrophils called IG, fewer IG found)
    if len(weightings) > 1:
        print(f"models trained with different class weightings ({sorted(weightings)}): no one prior to undo")
        fractions, prior = (0.0,), np.zeros(len(data.classes))
    else:
        fractions, prior = PRIOR_FRACTIONS, prior_shift(data, weightings.pop())
    for split in splits:
        for views in (1, 2, 4, 8):
            chosen = np.concatenate([m[:views] for m in all_logits[split]])
            mean = chosen.mean(axis=0)
            for fraction in fractions:
                name = f" +{fraction:g} prior" if fraction else ""
                results[split][f"{len(args.models)} model(s), {views} view(s){name}"] = figures(
                    mean + fraction * prior, targets[split], data.classes
                )
    for split in splits:
        print(f"\n{split}: union, macro-F1, IG / erythroblast / platelet recall, five-class accuracy")
        for name, row in results[split].items():
            print(
                f"  {name:38s} {row['union']:.4f} {row['macro_f1']:.4f}  {row['ig']:.3f} {row['ery']:.3f} "
                f"{row['plt']:.3f}  {row['five']:.4f}"
            )
    if args.border_sweep:
        border_sweep(np.mean([m[0] for m in all_logits["val"]], axis=0), targets["val"], data.classes)


def border_sweep(logits: np.ndarray, targets: np.ndarray, classes: list[str]) -> None:
    """Val at 1 view with the IG logit moved: the trade between IG recall and normal neutrophils called IG."""
    ig, neutrophil = classes.index("immature_granulocyte"), classes.index("neutrophil")
    print("\nval, 1 view, IG logit moved by: union, IG recall (cells), five-class, neutrophils called IG")
    for bias in np.arange(-1.5, 1.51, 0.25):
        moved = logits.copy()
        moved[:, ig] += bias
        row = figures(moved, targets, classes)
        predicted = moved.argmax(axis=1)
        found = int(((targets == ig) & (predicted == ig)).sum())
        wrong = int(((targets == neutrophil) & (predicted == ig)).sum())
        print(f"  {bias:+.2f}  {row['union']:.4f}  {row['ig']:.3f} ({found})  {row['five']:.4f}  {wrong}")


if __name__ == "__main__":
    main()
