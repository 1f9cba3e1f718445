"""Measure int8 versions of the bundled model against the shipped float32 one, in one run (needs the train extra).

    python scripts/measure_int8.py [--pbc ../shared/data/pbc_wbc5] [--bccd ../shared/data/bccd/crops]

Converts `model_store/wbc_mobilenetv2.keras` twice: int8 weights with float activations (dynamic range) and full
integer (weights and activations, calibrated on 300 PBC *training* cells), then reports for each, on the PBC test
split and on the BCCD crops: accuracy of the model's own calls (no stain-robust routing: this compares the main
model's weights), agreement with float32, max probability difference, and model-only speed (prepared batches of
16, this machine's cores). The ship rule (issue: performance) is fixed before measuring: PBC test drop <= 0.2 pt,
BCCD drop <= 1 pt, and faster.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ai_edge_litert.interpreter import Interpreter

from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.images import load_image
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.inference.base import softmax
from wbc_desktop.inference.manifest import read_manifest
from wbc_desktop.paths import model_store_dir


def views_of(paths: list[Path], size: int, view: str) -> np.ndarray:
    return np.stack([model_view(load_image(path), size, view) for path in paths]).astype(np.float32)


def convert(keras_path: Path, kind: str, calibration: np.ndarray) -> bytes:
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_path, compile=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "full-int8":

        def representative():
            for row in calibration:
                yield [row[None]]

        converter.representative_dataset = representative
    return converter.convert()


class Runner:
    def __init__(self, content: bytes, num_classes: int):
        self.interpreter = Interpreter(model_content=content)
        self.input = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.logits = next(d["index"] for d in outputs if int(d["shape"][-1]) == num_classes)
        self.size = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self.size:
            self.interpreter.resize_tensor_input(self.input, batch.shape)
            self.interpreter.allocate_tensors()
            self.size = batch.shape[0]
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.logits).copy()

    def logits_of(self, images: np.ndarray, batch: int = 16) -> np.ndarray:
        return np.concatenate([self(images[i : i + batch]) for i in range(0, len(images), batch)])

    def rate(self, images: np.ndarray, batch: int = 16, repeats: int = 3) -> float:
        self.logits_of(images[:batch], batch)
        best = 0.0
        for _ in range(repeats):
            started = time.perf_counter()
            self.logits_of(images, batch)
            best = max(best, len(images) / (time.perf_counter() - started))
        return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pbc", type=Path, default=Path("../shared/data/pbc_wbc5"))
    parser.add_argument("--bccd", type=Path, default=Path("../shared/data/bccd/crops"))
    args = parser.parse_args()
    store = model_store_dir()
    manifest = read_manifest(store)
    classes = list(manifest.classes)
    with open(args.pbc / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [args.pbc / r["path"] for r in rows if r["split"] == "train"]
    calibration = views_of(
        [train[i] for i in np.random.default_rng(0).choice(len(train), 300, replace=False)],
        manifest.input_size,
        manifest.view,
    )
    test_rows = [r for r in rows if r["split"] == "test"]
    sets = {
        "PBC test": (
            views_of([args.pbc / r["path"] for r in test_rows], manifest.input_size, manifest.view),
            np.array([classes.index(r["label"]) for r in test_rows]),
        )
    }
    bccd = load_labelled_set(args.bccd)
    sets["BCCD crops"] = (
        views_of(bccd.paths, manifest.input_size, manifest.view),
        np.array([classes.index(label) for label in bccd.labels]),
    )
    models = {"float32": (store / manifest.model_file).read_bytes()}
    for kind in ("dynamic-int8", "full-int8"):
        models[kind] = convert(store / "wbc_mobilenetv2.keras", kind, calibration)
    reference = {name: Runner(models["float32"], len(classes)).logits_of(x) for name, (x, _) in sets.items()}
    speed_images = sets["PBC test"][0][:400]
    for kind, content in models.items():
        runner = Runner(content, len(classes))
        line = [f"{kind:13s} {len(content) / 1e6:5.1f} MB  {runner.rate(speed_images):6.0f} img/s"]
        for name, (x, y) in sets.items():
            logits = reference[name] if kind == "float32" else runner.logits_of(x)
            probabilities = softmax(logits, manifest.temperature)
            base = softmax(reference[name], manifest.temperature)
            accuracy = float(np.mean(probabilities.argmax(1) == y))
            agree = float(np.mean(probabilities.argmax(1) == base.argmax(1)))
            line.append(
                f"{name}: acc {accuracy:.4f} agree {agree:.4f} max|dp| {np.abs(probabilities - base).max():.3f}"
            )
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
