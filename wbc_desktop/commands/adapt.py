"""``wbc-desktop adapt``: fit a lab profile on verified cells: a correction of the model's calls over its features
(+ temperature), or with ``--head finetune`` a copy of the whole model tuned on them (needs the ``train`` extra)."""

from __future__ import annotations

import argparse
import json
import sys

from wbc_desktop.commands.common import EXIT_NOTHING, EXIT_OK, EXIT_USAGE, Progress, load_model_or_explain
from wbc_desktop.core.lab_profile import ProfileError
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.inference.lab_profile import build_profile, profile_is_worse
from wbc_desktop.paths import model_store_dir


def run_adapt(args: argparse.Namespace) -> int:
    if not args.data_dir.is_dir():
        print(f"error: not a folder: {args.data_dir}", file=sys.stderr)
        return EXIT_USAGE
    stores = {model_store_dir().resolve()} | ({args.model.resolve()} if args.model else set())
    if args.out.resolve() in stores:
        print("error: a lab profile is stored beside the model, never over it: choose another --out", file=sys.stderr)
        return EXIT_USAGE
    base = load_model_or_explain(args.model)
    if base is None:
        return EXIT_NOTHING
    data = load_labelled_set(args.data_dir)
    if args.head == "finetune":
        return _fine_tune(args, base, data)
    progress = Progress(len(data.paths), "reading features")
    try:
        profile = build_profile(
            base,
            data.paths,
            data.labels,
            args.name or args.out.name,
            args.holdout,
            args.seed,
            on_progress=lambda done, total: progress.update(done),
            from_scratch=args.head == "scratch",
        )
    except ProfileError as error:
        progress.close()
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    progress.close()
    return _report(profile, args.out)


def _fine_tune(args: argparse.Namespace, base, data) -> int:
    try:
        from wbc_desktop.training.finetune import FineTuneConfig, build_tuned_profile
    except ImportError as error:
        print(f"error: --head finetune needs the 'train' extra (pip install '.[train]'): {error}", file=sys.stderr)
        return EXIT_USAGE
    bars: dict[str, Progress] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = Progress(total, stage, unit="img" if stage == "reading cells" else "steps")
        bars[stage].update(done)

    try:
        profile = build_tuned_profile(
            base.model_dir,
            data.paths,
            data.labels,
            args.name or args.out.name,
            args.out,
            args.holdout,
            FineTuneConfig(steps=args.steps, seed=args.seed),
            on_progress,
        )
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for bar in bars.values():
            bar.close()
    return _report(profile, args.out)


def _report(profile, out) -> int:
    path = profile.save(out)
    summary = {k: v for k, v in profile.validation.items() if k not in ("confusion_matrix", "per_class")}
    print(json.dumps(summary, indent=2))
    print(f"lab profile written to {path} ({profile.cells} verified cells)")
    validation = profile.validation
    if "accuracy" in validation:
        print(f"held-back accuracy: {validation['accuracy']:.4f}")
    if validation.get("tuned_model_accuracy") is not None:
        print(f"the fine-tuned model alone, without the stain-robust calls: {validation['tuned_model_accuracy']:.4f}")
    if validation.get("bundled_accuracy") is not None:
        print(f"the model without a profile on the same cells: {validation['bundled_accuracy']:.4f}")
    if profile_is_worse(validation):
        print("warning: this profile does worse than the model without one on the held-back cells", file=sys.stderr)
    return EXIT_OK
