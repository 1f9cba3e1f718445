"""``wbc-desktop adapt``: fit a lab profile (a correction of the model's calls over its features, + temperature) on
verified cells."""

from __future__ import annotations

import argparse
import json
import sys

from wbc_desktop.cli import EXIT_NOTHING, EXIT_OK, EXIT_USAGE, Progress
from wbc_desktop.commands.common import load_model_or_explain
from wbc_desktop.core.adapt import ProfileError
from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.inference.profile import build_profile
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
    path = profile.save(args.out)
    summary = {k: v for k, v in profile.validation.items() if k not in ("confusion_matrix", "per_class")}
    print(json.dumps(summary, indent=2))
    print(f"lab profile written to {path} ({profile.cells} verified cells)")
    if "accuracy" in profile.validation:
        print(f"held-back accuracy: {profile.validation['accuracy']:.4f}")
    return EXIT_OK
