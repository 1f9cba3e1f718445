"""Throughput of the app's runtime (LiteRT) vs the same model in TensorFlow/Keras, measured in one run.

    python benchmarks/count_throughput.py [IMAGE_FOLDER] [--limit N]

Prints images/s for (a) the full `count` pipeline (decode + model view + classify) with LiteRT (cells prepared in
parallel ahead of the model, and all in one thread) and with Keras, and (b) the model alone on pre-decoded
arrays, with the ratios between them. Needs the `train` extra for Keras.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.images import discover, load_image
from wbc_desktop.core.pipeline import classify_iter
from wbc_desktop.inference.base import softmax
from wbc_desktop.inference.litert import load_classifier
from wbc_desktop.paths import model_store_dir


class KerasClassifier:
    """The bundled `.keras` model behind the same interface as the LiteRT classifier."""

    view_spec = None  # prepares each batch itself, in predict()

    def __init__(self, model_dir: Path, reference):
        import keras

        self.model = keras.models.load_model(model_dir / "wbc_mobilenetv2.keras")
        self.classes, self.size, self.view, self.temperature = (
            reference.classes,
            reference.manifest.input_size,
            reference.manifest.view,
            reference.temperature,
        )

    def predict(self, images):
        batch = np.stack([model_view(image, self.size, self.view) for image in images]).astype(np.float32)
        logits = self.model.predict_on_batch(batch)[0]
        return softmax(np.asarray(logits), self.temperature)


def import_seconds(module: str) -> float:
    """Wall time of a fresh interpreter importing ``module`` (minus a bare interpreter's start)."""
    import subprocess

    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - started

    return timed(f"import {module}") - timed("pass")


def rate(run, count: int) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parent.parent / "tests" / "fixtures" / "pbc"))
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    paths = discover([args.folder]).images[: args.limit]
    litert = load_classifier()
    keras_model = KerasClassifier(model_store_dir(), litert)
    for classifier in (litert, keras_model):  # warm-up: graph building, allocation
        classifier.predict([load_image(paths[0])] * args.batch_size)

    pipeline = {}
    for name, classifier, workers in (
        ("LiteRT", litert, None),  # preparation on one thread per core, ahead of the model (the app's default)
        ("LiteRT, sequential", litert, 0),  # everything in one thread, as before the parallel pipeline
        ("Keras", keras_model, None),
    ):
        pipeline[name] = rate(
            lambda c=classifier, w=workers: list(classify_iter(paths, c, batch_size=args.batch_size, workers=w)),
            len(paths),
        )
    size, view = litert.manifest.input_size, litert.manifest.view
    batches = [
        np.stack([model_view(load_image(p), size, view) for p in paths[start : start + args.batch_size]]).astype(
            np.float32
        )
        for start in range(0, len(paths), args.batch_size)
    ]
    model_only = {}
    # the model alone: both get the same prepared input tensors
    for name, run_batch in (("LiteRT", litert._run), ("Keras", keras_model.model.predict_on_batch)):

        def run(r=run_batch):
            for batch in batches:
                r(batch)

        model_only[name] = rate(run, len(paths))

    litert_import, tf_import = import_seconds("ai_edge_litert.interpreter"), import_seconds("tensorflow")
    print(f"{len(paths)} images from {args.folder}, batch {args.batch_size}, {os.cpu_count()} CPU cores")
    ratio = tf_import / litert_import
    print(f"import: ai_edge_litert {litert_import:.2f} s, tensorflow {tf_import:.2f} s, ratio {ratio:.0f}x")
    print(
        f"count pipeline (decode+model view+classify): LiteRT {pipeline['LiteRT']:.1f} img/s, "
        f"Keras {pipeline['Keras']:.1f} img/s, ratio {pipeline['LiteRT'] / pipeline['Keras']:.2f}x"
    )
    print(
        f"model only (prepared input tensors):    LiteRT {model_only['LiteRT']:.1f} img/s, "
        f"Keras {model_only['Keras']:.1f} img/s, ratio {model_only['LiteRT'] / model_only['Keras']:.2f}x"
    )
    parallel, sequential = pipeline["LiteRT"], pipeline["LiteRT, sequential"]
    print(
        f"LiteRT count pipeline: parallel {parallel:.1f} img/s vs sequential {sequential:.1f} img/s "
        f"({parallel / sequential:.2f}x); {parallel / model_only['LiteRT']:.2f} of the model-only rate"
    )


if __name__ == "__main__":
    main()
