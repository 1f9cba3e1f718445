"""Write a prior correction into a trained eight-class model: a copy of the run whose last bias is shifted.

Class weights in training move each logit by about log(weight) towards the rarer classes; undoing a fraction of
that (chosen on val with ``eight_class_choices.py``) is a fixed shift of the logits, so it can live in the model's
own ``logits`` bias: the exported LiteRT file, its temperature, review threshold and metrics then all include it and
the app needs nothing new. The copy's ``training.json`` records the shift.

    python scripts/shift_logits.py runs/model10 runs/model10s --fraction 0.5
    wbc-desktop train runs/data8 --export-only --out runs/model10s --test-time-views 1 ...
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from wbc_desktop.core.labelled import load_labelled_set
from wbc_desktop.training.train import TrainConfig, prior_shift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="a run folder of wbc-desktop train (trained.keras, training.json)")
    parser.add_argument("out", type=Path, help="the new run folder")
    parser.add_argument("--fraction", type=float, required=True, help="0: as trained, 1: the training priors")
    args = parser.parse_args()
    import keras

    record = json.loads((args.run / "training.json").read_text())
    config = TrainConfig(**record["config"])  # the weighting and training split the run used
    data = load_labelled_set(config.data_dir, config.split_csv, seed=config.seed)
    assert data.classes == record["classes"], "the run's data folder no longer has its classes"
    shift = args.fraction * prior_shift(data, config.class_weighting)
    model = keras.models.load_model(args.run / "trained.keras")
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel, bias + shift.astype(bias.dtype)])
    args.out.mkdir(parents=True, exist_ok=False)
    model.save(args.out / "trained.keras")
    if (args.run / "history.csv").exists():  # the export copies it into the bundle
        shutil.copy2(args.run / "history.csv", args.out / "history.csv")
    record["logit_shift"] = {
        "from": str(args.run),
        "prior_fraction": args.fraction,
        "shift": dict(zip(record["classes"], np.round(shift, 6).tolist(), strict=True)),
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.out / 'trained.keras'}: logits shifted by {record['logit_shift']['shift']}")


if __name__ == "__main__":
    main()
