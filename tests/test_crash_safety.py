"""Kill -9 in the middle of work: every acknowledged reclassification is on disk; exports are whole or absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wbc_desktop.core.store import CaseStore

CHILD = Path(__file__).with_name("crash_child.py")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def run_and_kill(args: list[str], acks_before_kill: int) -> list[str]:
    """Start the child, read acknowledgements until ``acks_before_kill`` arrived, SIGKILL it; return ack lines."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CHILD.parent.parent), str(CHILD.parent)]))
    child = subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line.split())
        if sum(1 for parts in lines if parts[0] == "ack") >= acks_before_kill:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return lines


def lost_changes(store_path: Path, lines: list[list[str]]) -> int:
    """How many acknowledged reclassifications are missing from the store after the crash."""
    case_id = int(next(parts[1] for parts in lines if parts[0] == "ready"))
    acks = [(int(p[1]), int(p[2]), p[3]) for p in lines if p[0] == "ack"]
    store = CaseStore(store_path)
    try:
        case = store.open_case(case_id)
        # the cells' changes (the case's creation is audited too) and, after the kill, an unbroken hash chain
        audit = [(entry.cell_id, entry.to_label) for entry in case.audit() if entry.cell_id is not None]
        assert store.verify(case_id).intact
        missing = sum(1 for change, cell, label in acks if change >= len(audit) or audit[change] != (cell, label))
        # the cells' labels agree with the last audited change of each cell
        last = {cell: label for cell, label in audit}
        assert all(case.cell(cell).label == label for cell, label in last.items())
    finally:
        store.close()
    return missing


@pytest.mark.parametrize("acks", [37, 120, 251])
def test_acknowledged_reclassifications_survive_sigkill(tmp_path, acks):
    store = tmp_path / "cases.sqlite"
    lines = run_and_kill(["reclassify", str(store), "autosave"], acks_before_kill=acks)
    assert sum(1 for p in lines if p[0] == "ack") >= acks
    assert lost_changes(store, lines) == 0


def test_the_check_fails_when_autosave_is_off(tmp_path):
    """The same check on an app that keeps changes in memory reports losses: the test above can fail."""
    store = tmp_path / "cases.sqlite"
    lines = run_and_kill(["reclassify", str(store), "off"], acks_before_kill=120)
    assert lost_changes(store, lines) >= 120


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.13, 0.31])
def test_export_killed_midway_leaves_old_or_new_file_never_partial(tmp_path, delay):
    target = tmp_path / "report.json"
    target.write_text(json.dumps({"version": 0}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CHILD.parent.parent), str(CHILD.parent)]))
    child = subprocess.Popen([sys.executable, str(CHILD), "export", str(target)], stdout=subprocess.PIPE, env=env)
    assert child.stdout is not None
    child.stdout.readline()  # ready: the loop of writes starts now
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    report = json.loads(target.read_text())  # a partial file would not parse
    if report["version"]:
        assert len(report["cells"]) == 60_000 and report["cells"][-1]["n"] == report["version"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "report.json"]
    assert all(name.startswith(".report.json.") for name in leftovers)  # at most an orphan temp file
