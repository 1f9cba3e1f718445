"""Shared fixtures and helpers: user data redirected to a temp folder, offscreen Qt, the bundled model, real
images, the real main window (with the fake classifier), real drops."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fakes import FakeClassifier
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from wbc_desktop.gui.main_window import MainWindow

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


@pytest.fixture(autouse=True)
def no_dialog_waits_for_a_person(monkeypatch):
    """A modal message box no test answered fails the test instead of waiting for a click for ever (a sign-out
    check's box once hung CI for minutes). Tests that expect one answer it by patching ``exec`` themselves."""
    from PySide6.QtWidgets import QMessageBox

    def unanswered(box, *args, **kwargs):
        raise AssertionError(f"a message box would wait for a person: {box.text()!r} {box.informativeText()!r}")

    monkeypatch.setattr(QMessageBox, "exec", unanswered)


@pytest.fixture(scope="session")
def classifier():
    from wbc_desktop.inference.litert import load_classifier

    return load_classifier()


@pytest.fixture
def pbc_images() -> list[Path]:
    return sorted(PBC.rglob("*.jpg"))


@pytest.fixture
def fake_classifier() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture
def window(qtbot, fake_classifier) -> MainWindow:
    """The real main window, shown offscreen, classifying with the fake classifier."""
    return make_window(qtbot, fake_classifier)


def make_window(qtbot, classifier=None, store_path=None) -> MainWindow:
    window = MainWindow(store_path=store_path, load_model=classifier is None)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    if classifier is None:
        with qtbot.waitSignal(window.model_ready, timeout=30_000):
            pass
    else:
        window.use_classifier(classifier)
    return window


def signer(window: MainWindow, user_id: str = "ana", name: str = "Ana Tech", password: str = "correct horse"):
    """A signing account of the window's store (created on first use), authenticated as at sign-out."""
    from wbc_desktop.accounts.store import SignatureError

    with contextlib.suppress(SignatureError):  # it exists already
        window.accounts.add(user_id, name, password)
    return window.accounts.authenticate(user_id, password)


def drop(window: MainWindow, paths: list[Path]) -> None:
    """A real drag-enter + drop with file URLs, handed to the window's handlers (as napari's tests do:
    QApplication only routes synthetic drops while a platform drag is in progress)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(  # Qt's drag-enter event takes an integer point (PySide6 6.11 insists)
        QPoint(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    event = QDropEvent(
        QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    assert event.isAccepted()


def solid_images(folder: Path, count: int, size: int = 24) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"cell{i:05d}.png"
        Image.new("RGB", (size, size), (i % 256, (i * 7) % 256, 120)).save(path)
        paths.append(path)
    return paths
