"""Train the MobileNetV2 WBC classifier from scratch (Keras, Adam, cosine schedule), then export a bundle.

Reads like a keras.io example: data as cached arrays, a ``PyDataset`` that augments each batch in NumPy,
``model.fit`` with validation in inference mode every epoch, a checkpoint of the best validation epoch, and
"precise BN" (batch-norm statistics re-estimated with the final weights) before export.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras  # the backend is chosen in wbc_desktop.training (the package's __init__)
import numpy as np

from wbc_desktop.core.canonical import CANONICAL_REVISION
from wbc_desktop.core.labelled import (
    LabelledSet,
    build_array_cache,
    load_labelled_set,
)
from wbc_desktop.training.augment import (
    augment_batch,
    augment_batch_labs,
    augment_batch_labs_hue,
    augment_batch_strong,
)
from wbc_desktop.training.model import batchnorm_layers, build_model

AUGMENTATIONS = {
    "standard": augment_batch,
    "strong": augment_batch_strong,
    "labs": augment_batch_labs,
    "labs-hue": augment_batch_labs_hue,
}


@dataclass
class TrainConfig:
    data_dir: str
    out: str = "runs/model"
    split_csv: str | None = None
    epochs: int = 15
    image_size: int = 128
    alpha: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_epochs: float = 1.0
    seed: int = 0
    limit_per_class: int | None = None  # tiny subsets for CI smoke runs
    precise_bn_batches: int = 100
    cache_dir: str | None = None
    view: str = "canonical"  # canonical (framed on the nucleus, stain-normalised) | resize (the whole image)
    init_from: str | None = None  # a trained .keras to start from (warm start; classes matched by name)
    augment: str = "labs"  # labs (for canonical views) | standard | strong (zoom, hue, gamma, grey, blur)
    class_weighting: str = "balanced"  # a key of CLASS_WEIGHTINGS: how hard rare classes pull the borders


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented training batches from a uint8 array; reshuffled every epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, augment: str = "standard"):
        super().__init__()
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.augment = AUGMENTATIONS[augment]
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int):
        chosen = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return self.augment(self.images[chosen], self.rng), self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.images))


def _limit(paths: list[Path], labels: list[str], per_class: int | None) -> tuple[list, list]:
    if per_class is None:
        return paths, labels
    kept: dict[str, int] = {}
    out_paths, out_labels = [], []
    for path, label in zip(paths, labels, strict=True):
        if kept.get(label, 0) < per_class:
            kept[label] = kept.get(label, 0) + 1
            out_paths.append(path)
            out_labels.append(label)
    return out_paths, out_labels


def cached_split(data: LabelledSet, split: str, config: TrainConfig) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """(paths, uint8 images, integer labels) of one split, decoding each image once per size and view."""
    view = config.view
    paths, labels = _limit(*data.subset(split), config.limit_per_class)
    # resize caches keep their old names; canonical ones change with the view's revision (never a stale view)
    suffix = f"|{config.image_size}" + ("" if view == "resize" else f"|{view}{CANONICAL_REVISION}")
    key = hashlib.sha1(("\n".join(str(p) for p in paths) + suffix).encode()).hexdigest()[:16]
    cache_dir = Path(config.cache_dir or Path(config.out) / "cache")
    images = build_array_cache(paths, config.image_size, cache_dir / f"{split}_{key}.npy", view=view)
    targets = np.array([data.classes.index(label) for label in labels], dtype=np.int32)
    return paths, images, targets


CLASS_WEIGHTINGS = {"balanced": 1.0, "three-quarters": 0.75, "sqrt": 0.5, "none": 0.0}


def class_weights(targets: np.ndarray, num_classes: int, weighting: str = "balanced") -> dict[int, float]:
    """Balanced weights n / (k * n_c) raised to the weighting's power: rare basophils count as much as common
    neutrophils (balanced), three quarters or half as much more in log terms (three-quarters, sqrt), or every
    cell the same (none).

    Why a choice: balanced weights move each logit by about log(weight), which pushes the neutrophil/IG border
    towards the rarer IG in the eight-class model (docs/figures.md, *Eight classes*).
    """
    if weighting not in CLASS_WEIGHTINGS:
        raise ValueError(f"class weighting must be one of {', '.join(CLASS_WEIGHTINGS)}, not {weighting!r}")
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    power = CLASS_WEIGHTINGS[weighting]
    return {c: float((len(targets) / (num_classes * counts[c])) ** power) for c in range(num_classes)}


def prior_shift(data: LabelledSet, weighting: str) -> np.ndarray:
    """-log(class weight) per class on the training split: the logit shift that undoes the weighting's pull
    towards rare classes (the training split's own priors back; zeros for ``none``)."""
    train_y = np.array([data.classes.index(label) for label in data.subset("train")[1]])
    weights = class_weights(train_y, len(data.classes), weighting)
    return -np.log(np.array([weights[c] for c in range(len(data.classes))]))


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10.0 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
        alpha=0.01,
    )


def precise_batchnorm(model: keras.Model, images: np.ndarray, batches: int, batch_size: int) -> None:
    """Replace each BN layer's moving statistics by their average over ``batches`` training batches.

    With momentum i/(i+1) at step i the moving average becomes the plain cumulative mean of batch statistics,
    computed with the final weights (the moving averages collected during training lag behind them).
    """
    layers = batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    rng = np.random.default_rng(1234)
    order = rng.permutation(len(images))
    steps = min(batches, max(1, len(images) // batch_size))
    for step in range(steps):
        for layer in layers:
            layer.momentum = step / (step + 1.0)
        chosen = np.sort(order[step * batch_size : (step + 1) * batch_size])
        model(images[chosen].astype(np.float32), training=True)
    for layer, momentum in zip(layers, saved, strict=True):
        layer.momentum = momentum


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    logits, _ = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(logits)


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == targets)) if len(targets) else 0.0


def warm_start(model: keras.Model, source: Path, classes: list[str]) -> None:
    """Copy a trained model's weights into ``model``: the backbone as it is, and the logits of each class both
    models know (by name, from the source's ``training.json`` or bundle manifest); new classes start from zero."""
    trained = keras.models.load_model(source, compile=False)
    if len(trained.layers) != len(model.layers):
        raise ValueError(f"{source} is not the same architecture as the model to train")
    # by position: the backbone's name carries its input size (mobilenetv2_1.00_96), and a model trained at
    # 96 px warm-starts one at 128 px (the weights are the same shapes; only the pooled grid grows)
    for layer, source_layer in zip(model.layers, trained.layers, strict=True):
        if layer.name == "logits" or not layer.weights:
            continue
        if type(layer) is not type(source_layer):
            raise ValueError(f"{source}: layer {source_layer.name} does not match {layer.name}")
        layer.set_weights(source_layer.get_weights())
    known = _classes_of(source)
    kernel, bias = model.get_layer("logits").get_weights()
    old_kernel, old_bias = trained.get_layer("logits").get_weights()
    kernel[:] = 0.0
    bias[:] = 0.0
    for new_index, name in enumerate(classes):
        if name in known:
            kernel[:, new_index] = old_kernel[:, known.index(name)]
            bias[new_index] = old_bias[known.index(name)]
    model.get_layer("logits").set_weights([kernel, bias])
    print(f"warm start from {source}: classes {known} -> {classes}", flush=True)


def training_record(source: Path) -> dict | None:
    """The ``training.json`` of a trained model (``<name>.training.json`` or ``training.json`` beside it), or None."""
    for candidate in (source.with_name(source.stem + ".training.json"), source.parent / "training.json"):
        if candidate.exists():
            return json.loads(candidate.read_text())
    return None


def _classes_of(source: Path) -> list[str]:
    record = training_record(source)
    if record is None and (source.parent / "manifest.json").exists():
        record = json.loads((source.parent / "manifest.json").read_text())
    if record is None:
        raise ValueError(f"no <name>.training.json, training.json or manifest.json beside {source} names its classes")
    return list(record["classes"])


def fit(config: TrainConfig) -> dict:
    """Train, checkpoint the best validation epoch, apply precise BN, save ``trained.keras`` + history."""
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_labelled_set(config.data_dir, config.split_csv, seed=config.seed)
    print(
        f"data: {len(data.paths)} images, classes {data.classes}, "
        f"{data.duplicates_removed} duplicates removed; {data.counts()}",
        flush=True,
    )
    _, train_x, train_y = cached_split(data, "train", config)
    _, val_x, val_y = cached_split(data, "val", config)

    model = build_model(len(data.classes), config.image_size, config.alpha)
    if config.init_from:
        warm_start(model, Path(config.init_from), data.classes)
    logits_model = keras.Model(model.input, model.outputs[0])
    batches = AugmentedBatches(train_x, train_y, config.batch_size, config.seed, config.augment)
    logits_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(config, len(batches))),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    best_weights = out / "best.weights.h5"
    started = time.time()
    history = logits_model.fit(
        batches,
        epochs=config.epochs,
        validation_data=(val_x.astype(np.float32), val_y),
        class_weight=class_weights(train_y, len(data.classes), config.class_weighting),
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                best_weights, monitor="val_accuracy", save_best_only=True, save_weights_only=True
            ),
            keras.callbacks.CSVLogger(out / "history.csv"),
        ],
        verbose=2,
    )
    train_seconds = time.time() - started
    model.load_weights(best_weights)
    val_before = accuracy(predict_logits(model, val_x), val_y)
    precise_batchnorm(model, train_x, config.precise_bn_batches, 64)
    val_after = accuracy(predict_logits(model, val_x), val_y)
    print(f"val accuracy: best checkpoint {val_before:.4f}, after precise BN {val_after:.4f}", flush=True)
    if val_after < val_before:  # decided on val only; never on test
        model.load_weights(best_weights)
    model.save(out / "trained.keras")
    summary = {
        "config": asdict(config),
        "classes": data.classes,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "train_seconds": train_seconds,
        "val_accuracy_checkpoint": val_before,
        "val_accuracy_precise_bn": val_after,
        "precise_bn_used": val_after >= val_before,
        "counts": data.counts(),
        "duplicates_removed": data.duplicates_removed,
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    return summary
