"""Discovery and loading, with one real (generated) file for each bad or unusual kind."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from badfiles import cell_like, rgb16_tiff_bytes, write_bad_corpus

from wbc_desktop.core import images
from wbc_desktop.core.images import (
    EmptyFileError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnreadableFileError,
    discover,
    load_image,
)

running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def corpus(tmp_path):
    return write_bad_corpus(tmp_path / "corpus")


@pytest.mark.parametrize(
    ("kind", "error", "words"),
    [
        ("empty", EmptyFileError, "empty"),
        ("truncated_jpeg", TruncatedImageError, "truncated"),
        ("truncated_png", TruncatedImageError, "truncated"),
        ("text_as_jpeg", NotAnImageError, "not an image"),
        ("corrupt", (NotAnImageError, UnreadableFileError), ""),
        ("bomb", ImageTooLargeError, "image too large: 100000x100000"),
    ],
)
def test_bad_files_raise_typed_errors_with_clear_messages(corpus, kind, error, words):
    with pytest.raises(error) as raised:
        load_image(corpus[kind])
    assert words in str(raised.value)
    assert "Traceback" not in str(raised.value)


@pytest.mark.parametrize(
    "kind",
    ["cmyk_jpeg", "rgba_png", "grayscale_png", "palette_transparent_png", "gray16_tiff", "gray16_png", "bmp"],
)
def test_unusual_modes_load_as_rgb_uint8(corpus, kind):
    array = load_image(corpus[kind])
    assert array.dtype == np.uint8
    assert array.shape == (80, 96, 3)
    # every mode keeps the dark nucleus darker than the pale background
    assert array[40, 48].mean() < array[2, 2].mean() - 40


def test_rgba_is_composited_on_white(corpus):
    array = load_image(corpus["rgba_png"])
    # background (230,190,200) at alpha 0.5 over white -> about (242, 222, 227)
    assert np.allclose(array[2, 2], (242, 222, 227), atol=12)


def test_sixteen_bit_grayscale_uses_full_range(corpus):
    array = load_image(corpus["gray16_tiff"])
    reference = np.asarray(cell_like().convert("L"))
    assert np.abs(array[..., 0].astype(int) - reference).max() <= 1


def test_sixteen_bit_rgb_tiff(tmp_path):
    source = (np.random.default_rng(1).random((12, 20, 3)) * 65535).astype(np.uint16)
    path = tmp_path / "rgb16.tiff"
    path.write_bytes(rgb16_tiff_bytes(source))
    array = load_image(path)
    assert array.shape == (12, 20, 3)
    assert np.abs(array.astype(int) - (source >> 8)).max() <= 1


def test_exif_orientation_is_applied(corpus):
    array = load_image(corpus["exif_rotated"])
    assert array.shape == (96, 80, 3)  # 96 wide x 80 high, turned upright


def test_tiny_and_very_wide_images_load(corpus):
    assert load_image(corpus["one_pixel"]).shape == (1, 1, 3)
    assert load_image(corpus["very_wide"]).shape == (3, 8000, 3)


def test_size_limit_guards_memory(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    cell_like((400, 300)).save(path)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100_000)
    with pytest.raises(ImageTooLargeError, match="image too large: 400x300"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableFileError, match="not found"):
        load_image(tmp_path / "gone.jpg")


@pytest.mark.skipif(running_as_root or sys.platform == "win32", reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.jpg"
    cell_like().save(path)
    path.chmod(0)
    with pytest.raises(UnreadableFileError, match="permission denied"):
        load_image(path)


def test_discovery_order_hidden_duplicates_and_types(tmp_path):
    folder = tmp_path / "slide"
    (folder / "sub").mkdir(parents=True)
    for name in ("cell10.jpg", "cell2.JPG", "cell1.png", ".hidden.jpg", "notes.txt", "sub/cell3.TIFF"):
        cell_like().save(folder / name, format="PNG") if not name.endswith(".txt") else (folder / name).write_text("x")
    (folder / ".cache").mkdir()
    cell_like().save(folder / ".cache" / "thumb.png")
    found = discover([folder, folder / "cell2.JPG", tmp_path / "missing.jpg", folder / "notes.txt"])
    names = [p.relative_to(folder).as_posix() for p in found.images]
    assert names == ["cell1.png", "cell2.JPG", "cell10.jpg", "sub/cell3.TIFF"]
    messages = dict((p.name, m) for p, m in found.errors)
    assert messages["missing.jpg"] == "file or folder not found"
    assert "not a supported image type" in messages["notes.txt"]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_discovery_survives_symlink_loops(tmp_path):
    folder = tmp_path / "a"
    (folder / "b").mkdir(parents=True)
    cell_like().save(folder / "b" / "x.png")
    os.symlink(folder, folder / "b" / "loop")
    os.symlink(folder / "b" / "x.png", folder / "link.png")
    found = discover([folder])
    assert [p.name for p in found.images] == ["x.png", "link.png"] or len(found.images) == 2
    assert found.errors == []


@pytest.mark.skipif(running_as_root or sys.platform == "win32", reason="root reads any folder")
def test_unreadable_folder_is_reported_not_raised(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    cell_like().save(locked / "x.png")
    locked.chmod(0)
    try:
        found = discover([tmp_path])
    finally:
        locked.chmod(0o755)
    assert found.images == []
    assert found.errors == [(locked, "folder cannot be read: permission denied")]


def test_unreadable_folder_via_scandir_failure(tmp_path, monkeypatch):
    """Root can read every folder, so also simulate the failure the OS reports to ordinary users."""
    good = tmp_path / "good"
    bad = tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    cell_like().save(good / "x.png")
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == os.fspath(bad):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(images.os, "scandir", scandir)
    found = discover([tmp_path])
    assert [p.name for p in found.images] == ["x.png"]
    assert found.errors == [(bad, "folder cannot be read: permission denied")]


def test_real_pbc_image_loads(pbc_images):
    array = load_image(pbc_images[0])
    assert array.shape[2] == 3 and array.shape[0] > 300


def test_unreadable_file_via_open_failure(tmp_path, monkeypatch):
    """As root every file is readable, so also simulate the error an ordinary user gets."""
    path = tmp_path / "locked.jpg"
    cell_like().save(path)
    real_open = images.Image.open

    def open_(target, *args, **kwargs):
        if os.fspath(target) == os.fspath(path):
            raise PermissionError(13, "Permission denied")
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(images.Image, "open", open_)
    with pytest.raises(UnreadableFileError, match="permission denied"):
        load_image(path)
