"""Child process for the crash-safety tests: reclassifies cells (or writes exports) until it is killed.

python crash_child.py reclassify STORE MODE     MODE: autosave | off (changes kept in memory only)
python crash_child.py export TARGET
"""

from __future__ import annotations

import sys

from wbc_desktop.core.case import Case
from wbc_desktop.core.differential import CLASSES
from wbc_desktop.core.export import write_json
from wbc_desktop.core.store import CaseStore

CELLS = 50


def reclassify(store_path: str, mode: str) -> None:
    if mode == "off":

        def in_memory_only(self, cell_id, label, who):  # what an app without autosave does until "Save"
            cell = self.cell(cell_id)
            cell.label = label
            return cell

        Case.set_label = in_memory_only
    store = CaseStore(store_path)
    case = store.create_case(sample_id="CRASH")
    case.add_results((f"cell{i}.png", "neutrophil", {"neutrophil": 1.0}) for i in range(CELLS))
    print(f"ready {case.id}", flush=True)
    change = 0
    while True:
        cell = case.cells[change % CELLS]
        label = CLASSES[(change // CELLS + 1) % len(CLASSES)]
        case.set_label(cell.id, label, "tech")
        print(f"ack {change} {cell.id} {label}", flush=True)  # acknowledged only after set_label returned
        change += 1


def export(target: str) -> None:
    version = 0
    print("ready 0", flush=True)
    while True:
        version += 1
        report = {"version": version, "cells": [{"path": f"cell{i}.png", "n": version} for i in range(60_000)]}
        write_json(target, report)
        print(f"ack {version}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "reclassify":
        reclassify(sys.argv[2], sys.argv[3])
    else:
        export(sys.argv[2])
