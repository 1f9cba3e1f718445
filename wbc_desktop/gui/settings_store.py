"""Persist lab settings and recent folders with QSettings (an INI file in the user data folder)."""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings

from wbc_desktop.core.settings import LabSettings
from wbc_desktop.paths import user_data_dir

MAX_RECENT = 8


def qsettings() -> QSettings:
    return QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)


load_problem = ""  # why the saved settings could not be used ("" if they could): the window says so


def load_settings() -> LabSettings:
    """The saved settings; the defaults (and ``load_problem`` saying why) if the file cannot be read."""
    global load_problem
    raw = qsettings().value("lab/settings", "")
    try:
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise ValueError("not a settings object")
        load_problem = ""
        return LabSettings.from_dict(data) if data else LabSettings()
    except (TypeError, ValueError, RecursionError) as error:
        kind = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:120]
        load_problem = (
            f"The saved settings in {user_data_dir() / 'settings.ini'} cannot be read ({kind}): the defaults are "
            "in use until you save Settings again."
        )
        return LabSettings()


def save_settings(settings: LabSettings) -> None:
    store = qsettings()
    store.setValue("lab/settings", json.dumps(settings.to_dict()))
    store.sync()


def recent_folders() -> list[str]:
    raw = qsettings().value("recent/folders", "")
    try:
        folders = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(folder) for folder in folders][:MAX_RECENT]


def remember_folder(folder: str) -> list[str]:
    folders = [folder] + [f for f in recent_folders() if f != folder]
    store = qsettings()
    store.setValue("recent/folders", json.dumps(folders[:MAX_RECENT]))
    store.sync()
    return folders[:MAX_RECENT]
