"""Time from launch to window visible, and from launch to the first result on an image given at start.

    python benchmarks/startup.py [--runs 3] [--app "CMD"]

Starts the app as a new process (offscreen unless DISPLAY is set) with WBC_DESKTOP_BENCH=1, which makes it print
`bench window-visible` and `bench first-result` markers; times are measured by this script from the moment it
starts the process. `--app` times another launcher, e.g. the frozen app `dist/wbc-desktop/wbc-desktop`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "samples" / "neutrophil.jpg"


def one_run(command: list[str]) -> dict[str, float]:
    env = dict(os.environ, WBC_DESKTOP_BENCH="1")
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
    started = time.perf_counter()
    process = subprocess.Popen([*command, "gui", str(SAMPLE)], stdout=subprocess.PIPE, text=True, env=env)
    marks: dict[str, float] = {}
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("bench "):
            marks[line.split()[1]] = time.perf_counter() - started
            if "first-result" in marks:
                break
    process.wait(timeout=60)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--app", default=f"{shlex.quote(sys.executable)} -m wbc_desktop")
    args = parser.parse_args()
    command = shlex.split(args.app)
    runs = [one_run(command) for _ in range(args.runs)]
    for key in ("window-visible", "first-result"):
        values = [run[key] for run in runs if key in run]
        print(
            f"launch -> {key}: median {statistics.median(values):.2f} s over {len(values)} runs "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
