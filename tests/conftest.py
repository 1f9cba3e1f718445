"""Shared fixtures: user data redirected to a temp folder, offscreen Qt, the bundled model, real images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"
PBC = FIXTURES / "pbc"
BCCD_CROPS = FIXTURES / "bccd_crops"


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path_factory, monkeypatch):
    """Cases, profiles and settings of a test never touch the real user's folders."""
    folder = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("WBC_DESKTOP_DATA_DIR", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "config"))
    return folder


@pytest.fixture(scope="session")
def classifier():
    from wbc_desktop.inference.litert import load_classifier

    return load_classifier()


@pytest.fixture
def pbc_images() -> list[Path]:
    return sorted(PBC.rglob("*.jpg"))
