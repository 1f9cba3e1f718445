"""Image discovery and robust loading.

Everything a technician can drop on the window passes through here: files and folders in any mix become an
ordered list of image paths (with per-path problems reported, never raised), and each path becomes an RGB uint8
array or a typed :class:`ImageLoadError` whose message a technician understands.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})

# Largest image we agree to decode (pixels). A 40,000 x 40,000 smear scan would need ~4.8 GB as RGB:
# refuse it with a message instead of letting Pillow exhaust the memory of a lab PC.
MAX_IMAGE_PIXELS = 60_000_000
MAX_SIDE = 20_000

# The same resampling filter is used to build the training cache and to feed the model in the app.
MODEL_RESAMPLE = Image.Resampling.BILINEAR


class ImageLoadError(Exception):
    """An image could not be used; ``str(error)`` is a message for the technician."""

    kind = "unreadable"


class NotAnImageError(ImageLoadError):
    kind = "not_an_image"


class EmptyFileError(ImageLoadError):
    kind = "empty"


class TruncatedImageError(ImageLoadError):
    kind = "truncated"


class ImageTooLargeError(ImageLoadError):
    kind = "too_large"


class ImageTooSmallError(ImageLoadError):
    kind = "too_small"


class UnreadableFileError(ImageLoadError):
    kind = "unreadable"


@dataclass
class Discovery:
    """What :func:`discover` found: image paths in a stable order, and per-path problems."""

    images: list[Path] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``cell2`` before ``cell10`` (what a person expects in a file list)."""
    parts = re.split(r"(\d+)", str(path).casefold())
    return [int(part) if part.isdigit() else part for part in parts]


def display_text(text: str | os.PathLike[str]) -> str:
    """A path as a person can read it: bytes that are not valid UTF-8 (undecodable file names) become '�'."""
    return os.fspath(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_image_path(path: Path) -> bool:
    """True for a non-hidden file name with one of the supported image suffixes."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


MAX_FOLDER_DEPTH = 200  # far beyond any slide archive; well inside Python's recursion limit


def iter_discover(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[Path | tuple[Path, str]]:
    """Yield image paths (and ``(path, message)`` problems) one at a time, for callers that stream.

    Folders are walked recursively in natural order; hidden entries are skipped; symlinked folders are
    followed once (a loop is cut by remembering the real paths seen); the same file given twice is yielded once.
    """
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()

    def file_once(path: Path) -> bool:
        key = os.path.normcase(os.path.abspath(path))
        if key in seen_files:
            return False
        seen_files.add(key)
        return True

    def walk(folder: Path, depth: int = 0) -> Iterator[Path | tuple[Path, str]]:
        if depth > MAX_FOLDER_DEPTH:  # nested generators: Python's recursion limit would end the whole batch
            yield folder, f"folder nested more than {MAX_FOLDER_DEPTH} levels deep: not searched further"
            return
        try:
            real = os.path.realpath(folder)
        except OSError as error:  # pragma: no cover - realpath rarely fails
            yield folder, f"folder cannot be read: {error.strerror or error}"
            return
        if real in seen_dirs:
            return  # a symlink loop or a folder given twice
        seen_dirs.add(real)
        try:
            with os.scandir(folder) as entries:
                children = sorted(entries, key=lambda entry: natural_key(Path(entry.name)))
        except PermissionError:
            yield folder, "folder cannot be read: permission denied"
            return
        except OSError as error:
            yield folder, f"folder cannot be read: {error.strerror or error}"
            return
        for entry in children:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                yield from walk(child, depth + 1)
            elif is_image_path(child) and file_once(child):
                yield child

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            yield from walk(path)
        elif path.exists():
            if not is_image_path(path):
                yield path, "not a supported image type (.jpg .jpeg .png .bmp .tif .tiff)"
            elif file_once(path):
                yield path
        else:
            yield path, "file or folder not found"


def discover(inputs: Iterable[str | os.PathLike[str]]) -> Discovery:
    """Collect :func:`iter_discover` into a :class:`Discovery`."""
    found = Discovery()
    for item in iter_discover(inputs):
        if isinstance(item, tuple):
            found.errors.append(item)
        else:
            found.images.append(item)
    return found


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white (a blank slide)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit grayscale: scale the used range down to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        high = float(values.max()) or 1.0
        scaled = np.clip(values * (255.0 / (65535.0 if high > 255 else 255.0)), 0, 255)
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / ((high - low) or 1.0) * 255.0
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def check_declared_size(image: Image.Image) -> tuple[int, int]:
    """The size an opened (not yet decoded) image declares; refuses it before any pixel is read if too large."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(f"image too large: {width}x{height}")
    return width, height


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load any supported image as an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied.

    Raises a subclass of :class:`ImageLoadError` with a technician-readable message on any failure.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnreadableFileError("file not found") from None
    except OSError as error:
        raise UnreadableFileError(f"file cannot be read: {error.strerror or error}") from None
    if size == 0:
        raise EmptyFileError("file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = check_declared_size(image)
                if width < 1 or height < 1:
                    raise ImageTooSmallError(f"image has no pixels: {width}x{height}")
                image.load()
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
                array = np.asarray(rgb, dtype=np.uint8)
    except ImageLoadError:
        raise
    except PermissionError:
        raise UnreadableFileError("file cannot be read: permission denied") from None
    except UnidentifiedImageError:
        raise NotAnImageError("not an image (or an image format that is not supported)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError("image too large: declared size exceeds the safety limit") from None
    except OSError as error:
        message = str(error).lower()
        if "truncated" in message or "broken data stream" in message or "premature end" in message:
            raise TruncatedImageError("file is truncated (incomplete image data)") from None
        raise UnreadableFileError(f"image data is damaged: {error}") from None
    except (ValueError, SyntaxError, IndexError, TypeError, MemoryError, EOFError) as error:
        raise UnreadableFileError(f"image data is damaged: {error}") from None
    if array.ndim != 3 or array.shape[2] != 3:  # pragma: no cover - _to_rgb guarantees this
        raise UnreadableFileError(f"unexpected image layout {array.shape}")
    return array


def resize_for_model(array: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB array to ``size x size`` exactly as the training cache does (Pillow bilinear)."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    image = Image.fromarray(array)
    return np.asarray(image.resize((size, size), MODEL_RESAMPLE), dtype=np.uint8)


# Never accept partially decoded files silently: a truncated JPEG must be an error, not a grey half-cell.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# load_image checks the declared size right after opening, before any pixel is decoded, and reports it in
# the message ("image too large: 100000x100000"); Pillow's own check would refuse earlier without the size.
Image.MAX_IMAGE_PIXELS = None


def load_preview(path: str | os.PathLike[str], max_side: int = 480) -> np.ndarray:
    """A display-size RGB copy of an image (JPEG draft mode: fast even for large files); same errors as
    :func:`load_image`."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            check_declared_size(image)
            image.draft("RGB", (max_side, max_side))
            image = ImageOps.exif_transpose(image)
            image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            return np.asarray(_to_rgb(image), dtype=np.uint8)
    except ImageLoadError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise UnreadableFileError(f"image cannot be shown: {error}") from None
