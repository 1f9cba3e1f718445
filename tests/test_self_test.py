"""``wbc-desktop self-test`` from source (CI also runs it from the frozen app)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.model_quality
def test_self_test_passes_with_bundled_model():
    result = subprocess.run(
        [sys.executable, "-m", "wbc_desktop", "self-test"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed" in result.stdout
    assert "[ok] stain-robust model (for other labs' cells) loads and runs" in result.stdout


def test_self_test_reports_a_broken_model(tmp_path):
    (tmp_path / "manifest.json").write_text('{"name": "x"}')
    result = subprocess.run(
        [sys.executable, "-m", "wbc_desktop", "self-test", "--model", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "[FAIL] model loads" in result.stdout and "manifest lacks" in result.stdout
