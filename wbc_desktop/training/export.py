"""Turn a trained Keras model into the app's model bundle.

``.keras`` (source of truth) → ``.tflite`` (logits + pooled features) → LiteRT/Keras agreement check →
temperature fitted on val → test-split report (metrics.json, PNGs) → ``manifest.json`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from wbc_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.domain import DomainModel, batch_flags, colour_statistics
from wbc_desktop.core.images import load_image
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.core.metrics import evaluation_summary, fit_temperature
from wbc_desktop.inference.base import dihedral_views, mean_over_views, softmax
from wbc_desktop.inference.manifest import KERAS_FILE, MANIFEST_NAME, sha256_bytes
from wbc_desktop.training.model_card import write_model_card
from wbc_desktop.training.plots import plot_confusion, plot_curves
from wbc_desktop.training.train import TrainConfig, cached_split

AGREEMENT_TOLERANCE = 1e-4
MODEL_FILE = "wbc_mobilenetv2.tflite"
PREPROCESSING = {
    "resize": "RGB uint8 (EXIF-rotated, alpha on white), Pillow bilinear resize to input_size x input_size, "
    "fed as float32 0..255; the model rescales to -1..1 itself",
    "canonical": "RGB uint8 (EXIF-rotated, alpha on white), framed on the nucleus (square of 1.6x its box), "
    "Pillow bilinear resize to input_size, stain-normalised (nuclear stain's optical density moved half way to "
    "PBC's, on PBC's background); fed as float32 0..255, the model rescales to -1..1 itself "
    "(wbc_desktop.core.canonical)",
}


WEIGHT_TYPES = ("float32", "float16", "int8")
# How far LiteRT may differ from Keras in probability for each weight type (measured: 3e-6, 3e-4, 1e-2).
WEIGHT_TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "int8": 3e-2}


def to_tflite(model: keras.Model, weights: str = "float32") -> bytes:
    """The model as LiteRT bytes. ``weights`` float16 halves the file and int8 (dynamic range) quarters most of
    it; either way the runtime computes in float32."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"weights must be one of {WEIGHT_TYPES}")
    # Keras prints the whole exported signature (hundreds of lines) on the way: keep it off the command's output.
    with contextlib.redirect_stdout(io.StringIO()):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if weights != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def litert_outputs(
    content: bytes, images: np.ndarray, num_classes: int, batch: int = 64
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits and pooled features from the converted model through the app's runtime (features None for a
    model without them, such as the stain-robust ensemble)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    input_index = interpreter.get_input_details()[0]["index"]
    outputs = {int(d["shape"][-1]): d["index"] for d in interpreter.get_output_details()}
    feature_index = next((index for width, index in outputs.items() if width != num_classes), None)
    chunks, feature_chunks, current = [], [], 0
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch].astype(np.float32)
        if chunk.shape[0] != current:
            interpreter.resize_tensor_input(input_index, chunk.shape)
            interpreter.allocate_tensors()
            current = chunk.shape[0]
        interpreter.set_tensor(input_index, chunk)
        interpreter.invoke()
        chunks.append(interpreter.get_tensor(outputs[num_classes]).copy())
        if feature_index is not None:
            feature_chunks.append(interpreter.get_tensor(feature_index).copy())
    if feature_index is None:
        return (np.concatenate(chunks) if chunks else np.zeros((0, num_classes), np.float32)), None
    if not chunks:
        return np.zeros((0, num_classes), np.float32), np.zeros((0, 1), np.float32)
    return np.concatenate(chunks), np.concatenate(feature_chunks)


def litert_view_outputs(
    content: bytes, images: np.ndarray, num_classes: int, views: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Logits as the app computes them (the mean over the first ``views`` flips and turns of each cell), the
    features of each cell as it is, and its logits as it is (for the Keras agreement check)."""
    if views == 1 or not len(images):
        logits, features = litert_outputs(content, images, num_classes)
        return logits, features, logits
    logits, features = litert_outputs(content, dihedral_views(images, views), num_classes)
    count = len(images)
    return (
        mean_over_views(logits, count, views),
        None if features is None else features[:count],
        logits[:count],
    )


def colours_of(images) -> np.ndarray:
    """Colour statistics of images as loaded (full size), exactly as the app computes them for the warning."""
    return np.stack([colour_statistics(image) for image in images])


def fit_domain(
    content: bytes,
    train_x: np.ndarray,
    train_y: np.ndarray,
    train_paths: list[Path],
    val_features: np.ndarray,
    val_paths: list[Path],
    num_classes: int,
    sample: int = 2000,
) -> DomainModel:
    """Colour and feature statistics of training images, calibrated on the validation split.

    Features come from the model's view (the cached arrays), colours from the images as loaded, as in the app.
    """
    chosen = np.random.default_rng(0).choice(len(train_x), min(sample, len(train_x)), replace=False)
    _, train_features = litert_outputs(content, train_x[chosen], num_classes)
    train_colours = colours_of(load_image(train_paths[i]) for i in chosen)
    domain = DomainModel.fit(train_colours, train_features, train_y[chosen], num_classes)
    domain.calibrate(colours_of(load_image(p) for p in val_paths), val_features)
    return domain


def choose_review_threshold(coverage: list[dict], target_accuracy: float = 0.999) -> float:
    """Lowest threshold whose automatically accepted cells reach ``target_accuracy`` on val (else 0.9): at most
    about one wrong call in a thousand passes without a person looking at it."""
    for row in coverage:
        if row["accuracy_accepted"] is not None and row["accuracy_accepted"] >= target_accuracy:
            return row["threshold"]
    return 0.9


def export_bundle(
    run_dir: str | Path,
    bundle_dir: str | Path,
    *,
    name: str = "wbc-mobilenetv2",
    version: str = "1.0.0",
    external_sets: dict[str, str] | None = None,
    compare_with: str | Path | None = None,
    test_time_views: int = 1,
) -> dict:
    """Export ``run_dir/trained.keras`` into ``bundle_dir``; returns the metrics written there.

    ``compare_with``: another bundle (e.g. the previous bundled model) whose test and external accuracies are
    put beside this one's in the metrics and the model card, so a trade-off is recorded where it is made.
    ``test_time_views``: calls average this many flips and turns of each cell (the manifest tells the app);
    temperature, review threshold and every reported figure are those of the averaged logits.
    """
    run_dir, bundle_dir = Path(run_dir), Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    training = json.loads((run_dir / "training.json").read_text())
    config = TrainConfig(**{"view": "resize", **training["config"]})  # runs before views existed were "resize"
    classes: list[str] = training["classes"]
    model = keras.models.load_model(run_dir / "trained.keras")
    content = to_tflite(model)

    data = load_labelled_set(config.data_dir, config.split_csv, seed=config.seed)
    train_paths, train_x, train_y = cached_split(data, "train", config)
    val_paths, val_x, val_y = cached_split(data, "val", config)
    test_paths, test_x, test_y = cached_split(data, "test", config)

    keras_test_logits = np.asarray(model.predict(test_x.astype(np.float32), batch_size=64, verbose=0)[0])
    test_logits, test_features, test_as_is = litert_view_outputs(content, test_x, len(classes), test_time_views)
    agreement = float(np.abs(softmax(keras_test_logits) - softmax(test_as_is)).max()) if len(test_y) else 0.0
    if agreement > AGREEMENT_TOLERANCE:
        raise RuntimeError(f"LiteRT and Keras disagree by {agreement:.2e} (> {AGREEMENT_TOLERANCE:g})")

    val_logits, val_features, _ = litert_view_outputs(content, val_x, len(classes), test_time_views)
    temperature = fit_temperature(val_logits, val_y) if len(val_y) else 1.0
    val_report = evaluation_summary(softmax(val_logits, temperature), val_y, classes)
    val_report["ece_uncalibrated"] = evaluation_summary(softmax(val_logits), val_y, classes)["ece"]
    test_report = evaluation_summary(softmax(test_logits, temperature), test_y, classes)
    test_report["ece_uncalibrated"] = evaluation_summary(softmax(test_logits), test_y, classes)["ece"]
    threshold = choose_review_threshold(val_report["coverage"])
    domain = fit_domain(content, train_x, train_y, train_paths, val_features, val_paths, len(classes))
    test_scores = domain.scores(colours_of(load_image(p) for p in test_paths), test_features)
    test_report["domain"] = batch_flags(test_scores.tolist(), domain.batch_threshold)

    external: dict[str, dict] = {}
    for label, folder in (external_sets or {}).items():
        other = load_labelled_set(folder, None)
        paths = other.paths
        targets = np.array([classes.index(label_) for label_ in other.labels])
        loaded = [load_image(p) for p in paths]
        images = np.stack([model_view(image, config.image_size, config.view) for image in loaded])
        logits, features, _ = litert_view_outputs(content, images, len(classes), test_time_views)
        external[label] = evaluation_summary(softmax(logits, temperature), targets, classes)
        external[label]["folder"] = str(folder)
        scores = domain.scores(colours_of(loaded), features)
        external[label]["domain"] = batch_flags(scores.tolist(), domain.batch_threshold)

    atomic_write_bytes(bundle_dir / MODEL_FILE, content)
    model.save(bundle_dir / KERAS_FILE)
    metrics = {
        "test": test_report,
        "val": val_report,
        "external": external,
        "temperature": temperature,
        "review_threshold": threshold,
        "test_time_views": test_time_views,
        "litert_keras_max_abs_prob_diff": agreement,
        "training": {k: v for k, v in training.items() if k != "config"},
        "config": asdict(config),
    }
    if compare_with is not None:
        metrics["comparison"] = comparison_from(Path(compare_with))
    atomic_write_text(bundle_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_confusion(
        test_report["confusion_matrix"],
        classes,
        bundle_dir / "confusion_matrix.png",
        f"{name} {version}: PBC test split (n={len(test_y)}), accuracy {test_report['accuracy']:.2%}",
    )
    plot_curves(training["history"], bundle_dir / "training_curves.png", f"{name} {version}: training")
    feature_size = int(model.outputs[1].shape[-1])
    manifest = {
        "name": name,
        "version": version,
        "model_file": MODEL_FILE,
        "sha256": sha256_bytes(content),
        "classes": classes,
        "input_size": config.image_size,
        "temperature": temperature,
        "review_threshold": threshold,
        "test_time_views": test_time_views,
        "view": config.view,
        "preprocessing": PREPROCESSING[config.view],
        # The runtime tells the outputs apart by their width: logits have one value per class.
        "outputs": {"logits": len(classes), "features": feature_size},
        "feature_size": feature_size,
        "architecture": (
            f"MobileNetV2 alpha={config.alpha}, from scratch, BN momentum 0.9"
            + (", precise BN" if training.get("precise_bn_used") else ", best-val checkpoint statistics")
        ),
        "created": dt.date.today().isoformat(),
        "training_data": {
            "dataset": "PBC (Acevedo et al. 2020), 5 normal WBC classes",
            "licence": "CC BY 4.0",
            "split": "fixed split.csv: train for weights, val for checkpoint/temperature, test for report",
            "counts": training["counts"],
        },
        "domain": domain.to_dict(),
        "metrics": {
            "test_accuracy": test_report["accuracy"],
            "test_macro_f1": test_report["macro"]["f1"],
            "test_ece": test_report["ece"],
            "val_accuracy": val_report["accuracy"],
            "external": {k: v["accuracy"] for k, v in external.items()},
        },
    }
    atomic_write_text(bundle_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    write_model_card(bundle_dir / "MODEL_CARD.md", manifest, metrics, test_paths_count=len(test_paths))
    if (run_dir / "history.csv").exists():
        shutil.copyfile(run_dir / "history.csv", bundle_dir / "history.csv")
    return metrics


def comparison_from(other_bundle: Path) -> dict:
    """Name, version, PBC test accuracy/macro-F1 and external accuracies of another bundle."""
    other = json.loads((other_bundle / MANIFEST_NAME).read_text())
    recorded = other.get("metrics", {})
    return {
        "name": f"{other['name']} {other['version']} (view {other.get('view', 'resize')})",
        "test_accuracy": recorded.get("test_accuracy"),
        "test_macro_f1": recorded.get("test_macro_f1"),
        "external": recorded.get("external", {}),
    }
