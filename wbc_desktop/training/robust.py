"""The stain-robust model: an ensemble of small, briefly trained models for cells from other labs.

Why a second model: the bundled model's PBC accuracy comes from long training at 96 px, and exactly that makes it
PBC-specific (its checkpoints fell from 0.61 to 0.45 on BCCD crops as PBC accuracy rose). Models trained briefly
at 64 px with strong stain jitter keep more of what transfers, at a PBC cost that in-domain cells never pay:
the app sends a cell to this model only when the out-of-domain score calls it foreign
(:mod:`wbc_desktop.inference.litert`).

The exported ``.tflite`` takes a batch of canonical views, makes the 8 flips and turns of each inside the graph,
runs every member on them and returns ``log`` of the mean probability: softmax of that output is the ensemble's
probability, so the app treats it like any model's logits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from wbc_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from wbc_desktop.core.canonical import model_view
from wbc_desktop.core.images import load_image
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.core.metrics import evaluation_summary
from wbc_desktop.inference.base import softmax
from wbc_desktop.inference.manifest import MANIFEST_NAME, sha256_bytes
from wbc_desktop.training.export import PREPROCESSING, WEIGHT_TOLERANCE, litert_outputs, to_tflite
from wbc_desktop.training.train import TrainConfig, cached_split

ROBUST_FOLDER = "robust"  # inside the bundled model's folder
ROBUST_FILE = "wbc_robust_ensemble.tflite"


def dihedral_batch(images):
    """The 8 flips and transposes of an NHWC batch, view-major along the batch axis (as
    :func:`wbc_desktop.inference.base.dihedral_views`, in graph ops)."""
    views = [images, keras.ops.flip(images, 1), keras.ops.flip(images, 2), keras.ops.flip(images, (1, 2))]
    views += [keras.ops.transpose(view, (0, 2, 1, 3)) for view in views]
    return keras.ops.concatenate(views, axis=0)


def build_ensemble(members: list[keras.Model], image_size: int, num_classes: int) -> keras.Model:
    """One model: log of the mean softmax over the 8 views of each cell and over every member."""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    views = keras.layers.Lambda(dihedral_batch, name="dihedral_views")(inputs)
    probabilities = []
    for index, member in enumerate(members):
        logits_only = keras.Model(member.input, member.outputs[0], name=f"member_{index}")
        probabilities.append(keras.layers.Softmax(name=f"softmax_{index}")(logits_only(views)))
    stacked = keras.ops.stack(probabilities, axis=0)  # (members, 8 * N, classes)
    per_view = keras.ops.reshape(stacked, (len(members) * 8, -1, num_classes))
    mean = keras.ops.mean(per_view, axis=0)
    log_mean = keras.ops.log(keras.ops.maximum(mean, 1e-7))
    return keras.Model(inputs, keras.layers.Identity(name="log_probabilities")(log_mean), name="wbc_robust")


def export_robust(
    member_runs: list[str | Path], out_dir: str | Path, *, external_sets: dict[str, str] | None = None
) -> dict:
    """Export the members' ``trained.keras`` (runs of ``wbc-desktop train``, same data, size and view) as one
    LiteRT ensemble in ``out_dir`` with its manifest and metrics; returns the metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainings = [json.loads((Path(run) / "training.json").read_text()) for run in member_runs]
    config = TrainConfig(**trainings[0]["config"])
    classes: list[str] = trainings[0]["classes"]
    for training in trainings[1:]:
        other = training["config"]
        if (other["image_size"], other["view"], training["classes"]) != (config.image_size, config.view, classes):
            raise ValueError("members must share image size, view and classes")
    members = [keras.models.load_model(Path(run) / "trained.keras") for run in member_runs]
    model = build_ensemble(members, config.image_size, len(classes))
    # The repo keeps files under 20 MB: float16 weights up to 4 members (4.5 MB each), int8 beyond.
    weights = "float16" if len(members) <= 4 else "int8"
    content = to_tflite(model, weights)

    data = load_labelled_set(config.data_dir, config.split_csv, seed=config.seed)
    _, val_x, val_y = cached_split(data, "val", config)
    _, test_x, test_y = cached_split(data, "test", config)

    def runtime_probabilities(images: np.ndarray) -> np.ndarray:
        return softmax(litert_outputs(content, images, len(classes))[0])

    val_probabilities = runtime_probabilities(val_x)
    keras_val = np.asarray(model.predict(val_x[:64].astype(np.float32), verbose=0))
    agreement = float(np.abs(softmax(keras_val) - val_probabilities[:64]).max())
    if agreement > WEIGHT_TOLERANCE[weights]:
        raise RuntimeError(f"LiteRT and Keras disagree by {agreement:.2e} (> {WEIGHT_TOLERANCE[weights]:g})")
    # The output already is a log-probability of an average: no temperature is fitted on PBC, whose cells
    # never reach this model in the app.
    val_report = evaluation_summary(val_probabilities, val_y, classes)
    test_report = evaluation_summary(runtime_probabilities(test_x), test_y, classes)
    external: dict[str, dict] = {}
    for label, folder in (external_sets or {}).items():
        other = load_labelled_set(folder, None)
        images = np.stack([model_view(load_image(p), config.image_size, config.view) for p in other.paths])
        targets = np.array([classes.index(name) for name in other.labels])
        external[label] = evaluation_summary(runtime_probabilities(images), targets, classes)
        external[label]["folder"] = str(folder)

    atomic_write_bytes(out_dir / ROBUST_FILE, content)
    member_info = [
        {"run": str(run), **{key: t["config"][key] for key in ("augment", "seed", "epochs")}}
        for run, t in zip(member_runs, trainings, strict=True)
    ]
    metrics = {
        "val": val_report,
        "test": test_report,
        "external": external,
        "litert_keras_max_abs_prob_diff": agreement,
        "members": member_info,
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    manifest = {
        "name": "wbc-robust-ensemble",
        "version": "1.0.0",
        "model_file": ROBUST_FILE,
        "sha256": sha256_bytes(content),
        "classes": classes,
        "input_size": config.image_size,
        "temperature": 1.0,
        "review_threshold": 0.9,
        "view": config.view,
        "preprocessing": PREPROCESSING[config.view],
        "outputs": {"logits": len(classes)},
        "architecture": (
            f"{len(members)} MobileNetV2 (alpha {config.alpha}, {config.image_size} px, from scratch) trained "
            f"{config.epochs} epochs with stain jitter ({', '.join(sorted({m['augment'] for m in member_info}))}); "
            "output log of the mean probability over members and the 8 flips/turns of each cell"
        ),
        "role": "cells the out-of-domain score calls foreign",
        "weights": weights,
        "created": dt.date.today().isoformat(),
        "metrics": {
            "val_accuracy": val_report["accuracy"],
            "test_accuracy": test_report["accuracy"],
            "external": {k: v["accuracy"] for k, v in external.items()},
        },
    }
    atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    print(f"ensemble of {len(members)}: PBC val {val_report['accuracy']:.4f}, test {test_report['accuracy']:.4f}")
    for label, report in external.items():
        print(f"  {label}: {report['accuracy']:.4f}")
    return metrics


CARD_HEADING = "## Stain-robust model (cells from other labs)"


def card_section(
    metrics: dict, manifest: dict, route_above: float, combined: dict | None = None, views: int = 8
) -> str:
    """The model card's section on the stain-robust model: what it is, when it answers, what it scores."""
    members = metrics["members"]
    lines = [
        CARD_HEADING,
        f"- {manifest['architecture']}.",
        "- Members: "
        + "; ".join(f"`{m['augment']}` jitter, seed {m['seed']}, {m['epochs']} epochs" for m in members)
        + " (`wbc-desktop train --image-size 64 --epochs 8 --augment "
        + "|".join(sorted({m["augment"] for m in members}))
        + " --seed "
        + "|".join(str(seed) for seed in sorted({m["seed"] for m in members}))
        + "`, then "
        "`scripts/build_robust_model.py`). Same PBC training split; no cell of another lab was trained on.",
        f"- **When it answers:** for each cell whose out-of-domain score is above {route_above:g} (each part of the "
        "score is divided by its 99th percentile on the PBC validation split, so 1 is more unusual than 99 % of "
        "validation cells). Every other cell keeps this model's call. A lab profile, when one is chosen, replaces "
        "both.",
        f"- {manifest.get('weights', 'float16').capitalize()} weights ({manifest['sha256'][:12]}…, checked by "
        "hash like this model); LiteRT vs Keras max "
        f"probability difference {metrics['litert_keras_max_abs_prob_diff']:.1e}.",
        f"- **As the app runs it:** averaged over the first {views} of the 8 views of each cell (the bundled "
        "manifest's `robust_model.views`), with int8 weights dequantised to float32 when it is first needed "
        "(LiteRT's hybrid int8 kernels ran it at half the speed; `wbc_desktop/inference/graph_edit.py`). The "
        "'alone' column is the file as stored (8 views).",
        "",
        "| measured on | the stain-robust model alone | as the app uses it (routed) |",
        "| --- | --- | --- |",
    ]
    combined = combined or {}
    lines.append(
        f"| PBC test split (n = {metrics['test']['support']}) | {metrics['test']['accuracy']:.4f} | "
        + (
            f"**{combined['test']['accuracy']:.4f}** ({combined['test']['routed']} cells routed)"
            if "test" in combined
            else "—"
        )
        + " |"
    )
    for label, report in metrics["external"].items():
        routed = combined.get(label)
        lines.append(
            f"| {label}, zero-shot (n = {report['support']}) | {report['accuracy']:.4f} | "
            + (f"**{routed['accuracy']:.4f}** ({routed['routed']} cells routed)" if routed else "—")
            + " |"
        )
    lines += [
        "",
        "Its members were trained briefly at 64 px on purpose: longer, sharper training made the main model more "
        "PBC-specific (its checkpoints fell from 0.61 to 0.45 on BCCD crops as PBC accuracy rose), and the 64 px "
        "probes kept 0.63-0.72. The recipe was chosen by measuring on BCCD crops (docs/figures.md, *Other labs*), "
        "so its BCCD figure is optimistic for a third lab.",
    ]
    return "\n".join(lines) + "\n"


def write_card_section(card: Path, section: str) -> None:
    """Put ``section`` into the model card, replacing an earlier one, before the licence."""
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    if CARD_HEADING in text:
        start = text.index(CARD_HEADING)
        end = text.find("\n## ", start + len(CARD_HEADING))
        text = text[:start] + text[end + 1 :] if end != -1 else text[:start]
    marker = "## Licence"
    if marker in text:
        at = text.index(marker)
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(card, text)


def attach_robust(bundle_dir: str | Path, robust_dir: str | Path, route_above: float, views: int = 8) -> None:
    """Copy the robust ensemble into ``bundle_dir/robust`` and record it, by hash, in the bundle's manifest:
    cells whose out-of-domain score passes ``route_above`` are then classified by it, averaged over the first
    ``views`` of its 8 views of each cell (:mod:`wbc_desktop.inference.graph_edit`)."""
    bundle_dir, robust_dir = Path(bundle_dir), Path(robust_dir)
    target = bundle_dir / ROBUST_FOLDER
    if target.resolve() != robust_dir.resolve():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(robust_dir, target)
    robust_manifest_bytes = (target / MANIFEST_NAME).read_bytes()
    robust_manifest = json.loads(robust_manifest_bytes)
    manifest = json.loads((bundle_dir / MANIFEST_NAME).read_text())
    manifest["robust_model"] = {
        "folder": ROBUST_FOLDER,
        "sha256": robust_manifest["sha256"],
        "manifest_sha256": hashlib.sha256(robust_manifest_bytes).hexdigest(),  # its classes decide calls too
        "route_above": route_above,
        "views": views,
    }
    atomic_write_text(bundle_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    metrics = json.loads((target / "metrics.json").read_text())
    write_card_section(bundle_dir / "MODEL_CARD.md", card_section(metrics, robust_manifest, route_above, views=views))
