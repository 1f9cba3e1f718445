"""Where resources, the bundled model, user data and settings live, from source and when frozen."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "WBC Desktop"
APP_SLUG = "wbc-desktop"


def bundle_root() -> Path:
    """The folder holding ``resources/`` and ``model_store/``: the repo root, or PyInstaller's ``_MEIPASS``."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return bundle_root() / "resources"


def resource(*parts: str) -> Path:
    """Path of a shipped resource file, e.g. ``resource("samples", "neutrophil.jpg")``."""
    return resources_dir().joinpath(*parts)


def model_store_dir() -> Path:
    """The bundled model's folder; ``WBC_DESKTOP_MODEL_DIR`` overrides it (tests, lab profiles)."""
    override = os.environ.get("WBC_DESKTOP_MODEL_DIR")
    return Path(override) if override else bundle_root() / "model_store"


def user_data_dir() -> Path:
    """Per-user folder for cases (SQLite) and lab profiles; ``WBC_DESKTOP_DATA_DIR`` overrides it."""
    override = os.environ.get("WBC_DESKTOP_DATA_DIR")
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP_NAME
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / APP_NAME
    else:
        path = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / APP_SLUG
    path.mkdir(parents=True, exist_ok=True)
    return path


def profiles_dir() -> Path:
    """Lab profiles (each a folder with profile.json, and a fine-tuned model if any) in the user data folder."""
    return user_data_dir() / "profiles"
