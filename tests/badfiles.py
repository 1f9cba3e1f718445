"""Generators for bad and unusual image files (no binary blobs from elsewhere: every file is made here)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def cell_like(size: tuple[int, int] = (96, 80), seed: int = 0) -> Image.Image:
    """A small RGB picture with a dark purple blob on pink, roughly like a stained cell."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    blob = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < (min(size) / 4) ** 2
    array = np.empty((height, width, 3), np.uint8)
    array[:] = (230, 190, 200)
    array[blob] = (90, 40, 130)
    array = np.clip(array.astype(int) + rng.integers(-10, 10, array.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def png_bomb_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def write_bad_corpus(folder: Path) -> dict[str, Path]:
    """Write one file of each bad or unusual kind into ``folder``; returns kind -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    base = cell_like()
    files: dict[str, Path] = {}

    def put(kind: str, name: str, content: bytes) -> None:
        path = folder / name
        path.write_bytes(content)
        files[kind] = path

    good_jpeg = jpeg_bytes(base)
    good_png = png_bytes(base)
    put("empty", "empty.jpg", b"")
    put("truncated_jpeg", "truncated.jpg", good_jpeg[: len(good_jpeg) // 2])
    put("truncated_png", "truncated.png", good_png[: len(good_png) // 2])
    put("text_as_jpeg", "notes.jpg", b"This is a text file, not a picture.\n" * 20)
    put("corrupt", "corrupt.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    put("bomb", "bomb.png", png_bomb_bytes())
    put("cmyk_jpeg", "cmyk.jpg", jpeg_bytes(base.convert("CMYK")))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.new("L", base.size, 128))
    put("rgba_png", "rgba.png", png_bytes(rgba))
    put("grayscale_png", "gray.png", png_bytes(base.convert("L")))
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    put("palette_transparent_png", "palette.png", png_bytes(palette, transparency=0))
    sixteen = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257).astype(np.uint16))
    buffer = io.BytesIO()
    sixteen.save(buffer, "TIFF")
    put("gray16_tiff", "gray16.tif", buffer.getvalue())
    buffer = io.BytesIO()
    sixteen.save(buffer, "PNG")
    put("gray16_png", "gray16.png", buffer.getvalue())
    put("one_pixel", "one.png", png_bytes(Image.new("RGB", (1, 1), (120, 60, 140))))
    put("very_wide", "wide.png", png_bytes(Image.new("RGB", (8000, 3), (200, 150, 170))))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    put("exif_rotated", "exif.jpg", jpeg_bytes(base, exif=exif.tobytes()))
    put("bmp", "cell.bmp", _bytes(base, "BMP"))
    return files


def _bytes(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def rgb16_tiff_bytes(array: np.ndarray) -> bytes:
    """An uncompressed 16-bit-per-channel RGB TIFF (what some microscope cameras write), built by hand."""
    height, width, _ = array.shape
    pixels = array.astype("<u2").tobytes()
    entries = []  # (tag, type, count, value)
    bits_offset = 8
    data_offset = bits_offset + 6
    ifd_offset = data_offset + len(pixels)
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, 3, bits_offset),  # BitsPerSample -> three SHORTs stored at bits_offset
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 2),  # RGB
        (273, 4, 1, data_offset),
        (277, 3, 1, 3),
        (278, 3, 1, height),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1),
    ]
    header = b"II*\x00" + struct.pack("<I", ifd_offset)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return header + struct.pack("<HHH", 16, 16, 16) + pixels + ifd
