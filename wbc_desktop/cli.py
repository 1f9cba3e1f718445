"""Command line: ``wbc-desktop [count|evaluate|train|adapt|self-test|verify-cases]``; no sub-command (or only image
files and folders) opens the window."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wbc_desktop import __version__


def _add_count(commands) -> None:
    parser = commands.add_parser("count", help="classify images and print a WBC differential")
    parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("--json", type=Path, help="write results as JSON to this file")
    parser.add_argument("--csv", type=Path, help="write results as CSV to this file")
    parser.add_argument("--wbc-count", type=float, help="total WBC count in 10^9/L (gives absolute counts)")
    parser.add_argument("--target", type=int, default=100, choices=(100, 200), help="target cell count")
    parser.add_argument("--model", type=Path, help="model folder (default: the bundled model)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--profile", type=Path, help="lab profile folder made by 'wbc-desktop adapt'")
    parser.add_argument(
        "--mode",
        choices=("auto", "cell", "field"),
        default="auto",
        help="cell: each image is one cell; field: find the WBCs in each smear field; auto: decide per image",
    )
    parser.add_argument(
        "--um-per-px",
        type=float,
        help="smear fields: the camera's micrometres per pixel, when known (default: measured from the red cells)",
    )


def _add_evaluate(commands) -> None:
    parser = commands.add_parser("evaluate", help="accuracy, per-class report and calibration on labelled images")
    parser.add_argument(
        "data_dir", type=Path, nargs="+", help="folder(s) with one sub-folder per class (several are scored as one)"
    )
    parser.add_argument(
        "--split-csv",
        type=Path,
        action="append",
        help="CSV with path,label,split columns; one per data folder, in the same order",
    )
    parser.add_argument("--split", default=None, help="train, val, test or all (default: test with a CSV, else all)")
    parser.add_argument("--model", type=Path, help="model folder (default: the bundled model)")
    parser.add_argument("--report", type=Path, help="folder for metrics.json and the confusion-matrix PNG")
    parser.add_argument("--profile", type=Path, help="lab profile folder made by 'wbc-desktop adapt'")


def _add_adapt(commands) -> None:
    parser = commands.add_parser("adapt", help="fit a lab profile on verified cells (class-per-folder)")
    parser.add_argument("data_dir", type=Path, help="verified cells, one sub-folder per class")
    parser.add_argument("--out", type=Path, required=True, help="profile folder to write (never the model store)")
    parser.add_argument("--model", type=Path, help="model folder (default: the bundled model)")
    parser.add_argument("--name", help="profile name (default: the folder name)")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of cells held back for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--head",
        choices=("correction", "scratch", "finetune"),
        default="correction",
        help="correction (default): the model's calls plus a correction fitted on your cells; "
        "scratch: a new head over the features alone; finetune: tune the whole model on your cells "
        "(most accurate on another lab, about 2 minutes; needs the 'train' extra)",
    )
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps with --head finetune (default 150)")


def _add_train(commands) -> None:
    parser = commands.add_parser("train", help="train and export a model (needs the 'train' extra)")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--split-csv", type=Path)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=1.0, help="MobileNetV2 width multiplier")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--out", type=Path, default=Path("runs/model"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-per-class", type=int, help="use only N images per class and split (smoke runs)")
    parser.add_argument("--precise-bn-batches", type=int, default=100)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument(
        "--view",
        choices=("canonical", "resize"),
        default="canonical",
        help="canonical: each cell framed on its nucleus and stain-normalised (survives other labs); "
        "resize: the whole image as it is",
    )
    parser.add_argument(
        "--augment",
        choices=("labs", "labs-hue", "standard", "strong"),
        default="labs",
        help="labs: blur, resolution, hue and framing jitter on top of the standard flips/turns/colour (for the "
        "canonical view); labs-hue: labs with the eosin stain's hue varied too (the stain-robust model's "
        "members); strong: zoom, hue, gamma, grey and blur for the resize view",
    )
    parser.add_argument(
        "--class-weights",
        choices=("balanced", "three-quarters", "sqrt", "none"),
        default="balanced",
        help="how much rare classes count in the loss: balanced (n / (k * n_c)), three-quarters (its power 0.75), "
        "sqrt (its square root) or none",
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL.keras",
        help="start from a trained model (e.g. model_store/wbc_mobilenetv2.keras); classes are matched by name",
    )
    parser.add_argument(
        "--test-time-views",
        type=int,
        choices=(1, 2, 4, 8),
        default=1,
        help="calls average this many flips and turns of each cell (written to the manifest; choose on val: "
        "scripts/eight_class_choices.py); 1 = the cell as it is",
    )
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="export OUT/trained.keras again (e.g. with other test-time views) without training",
    )
    parser.add_argument("--name", default="wbc-mobilenetv2")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument(
        "--external",
        action="append",
        metavar="NAME=DIR",
        help="also report zero-shot accuracy on a class-per-folder set from another lab (repeatable)",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="BUNDLE",
        help="record this model's trade-off against another bundle (e.g. model_store) in its metrics and card",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wbc-desktop",
        description="Classify white blood cells and sign out a WBC differential. No command, or image files and "
        "folders, opens the window (on those images).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(paths=[])  # no sub-command: the window, on no images
    commands = parser.add_subparsers(dest="command")
    _add_count(commands)
    _add_evaluate(commands)
    _add_train(commands)
    _add_adapt(commands)
    self_test = commands.add_parser("self-test", help="check the installed app end to end (offscreen)")
    self_test.add_argument("--model", type=Path, help="model folder (default: the bundled model)")
    verify = commands.add_parser(
        "verify-cases", help="check the case store's audit chains and sign-out seals (exit 1 if altered)"
    )
    verify.add_argument("database", nargs="?", type=Path, help="cases.sqlite (default: the app's own)")
    verify.add_argument("-v", "--verbose", action="store_true", help="list intact cases too, with their head hash")
    gui = commands.add_parser("gui", help="open the window (the default)")
    gui.add_argument("paths", nargs="*", help="images or folders to load at start")
    return parser


SUBCOMMANDS = ("count", "evaluate", "train", "adapt", "self-test", "verify-cases", "gui")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "gui")  # `wbc-desktop FOLDER…` opens the window on those images, as a desktop app does
    args = parser.parse_args(argv)
    if args.command == "count":
        from wbc_desktop.commands.count import run_count

        return run_count(args)
    if args.command == "evaluate":
        from wbc_desktop.commands.evaluate import run_evaluate

        return run_evaluate(args)
    if args.command == "train":
        from wbc_desktop.commands.train import run_train

        return run_train(args)
    if args.command == "adapt":
        from wbc_desktop.commands.adapt import run_adapt

        return run_adapt(args)
    if args.command == "self-test":
        from wbc_desktop.commands.self_test import run_self_test

        return run_self_test(args)
    if args.command == "verify-cases":
        from wbc_desktop.commands.verify_cases import run_verify_cases

        return run_verify_cases(args)
    from wbc_desktop.gui.app import run_gui

    return run_gui(args.paths)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
