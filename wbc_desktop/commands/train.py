"""``wbc-desktop train``: fit, export and report (needs the ``train`` extra: TensorFlow, matplotlib)."""

from __future__ import annotations

import argparse
import sys

from wbc_desktop.commands.common import EXIT_NOTHING, EXIT_OK


def run_train(args: argparse.Namespace) -> int:
    try:
        from wbc_desktop.training.export import export_bundle
        from wbc_desktop.training.train import TrainConfig, fit
    except ImportError as error:
        print(f"error: training needs the 'train' extra (pip install '.[train]'): {error}", file=sys.stderr)
        return EXIT_NOTHING
    config = TrainConfig(
        data_dir=str(args.data_dir),
        out=str(args.out),
        split_csv=str(args.split_csv) if args.split_csv else None,
        epochs=args.epochs,
        image_size=args.image_size,
        alpha=args.alpha,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        limit_per_class=args.limit_per_class,
        precise_bn_batches=args.precise_bn_batches,
        cache_dir=str(args.cache_dir) if args.cache_dir else None,
        view=args.view,
        augment=args.augment,
        class_weighting=args.class_weights,
        init_from=str(args.init_from) if args.init_from else None,
    )
    if not args.export_only:
        fit(config)
    elif not (args.out / "trained.keras").exists():
        print(f"error: --export-only needs a trained model: {args.out / 'trained.keras'} not found", file=sys.stderr)
        return EXIT_NOTHING
    external = dict(item.split("=", 1) for item in args.external) if args.external else None
    metrics = export_bundle(
        args.out,
        args.out / "bundle",
        name=args.name,
        version=args.version,
        external_sets=external,
        compare_with=args.compare_with,
        test_time_views=args.test_time_views,
    )
    test = metrics["test"]
    print(f"bundle written to {args.out / 'bundle'}")
    print(f"test accuracy: {test['accuracy']:.4f}")
    print(f"test macro-F1: {test['macro']['f1']:.4f}")
    return EXIT_OK
