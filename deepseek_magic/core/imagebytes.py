"""What an image's bytes say about it: format from the magic bytes, pixel size from the header.

The library (which turns figures and images into request blocks) and the
emulator (which describes the images it receives) both read image bytes, and
neither may trust a file name or a declared MIME type: the format is what the
first bytes say. Only the four formats DeepSeek accepts are recognised (JPEG,
PNG, GIF, WebP); anything else is "not an image" here. Headers are read with
``struct`` alone, so no imaging library is needed, and a truncated or lying
header yields ``None`` for the size rather than an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

#: MIME type per recognised format; the data: URI of a block uses these and nothing else.
MIME_TYPES: Final[dict[str, str]] = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless, …); C4, C8 and CC are not frames.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class ImageFacts:
    """Format, MIME type and (when the header is readable) pixel size of some image bytes."""

    format: str
    mime: str
    width: int | None
    height: int | None

    def describe(self, size: int) -> str:
        """``PNG 640×480, 12.3 KiB`` (``size`` in bytes)."""
        pixels = f" {self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.format}{pixels}, {human_bytes(size)}"


def image_format(data: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"``, ``"GIF"`` or ``"WEBP"`` from the magic bytes; ``None`` for anything else."""
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def facts(data: bytes) -> ImageFacts | None:
    """The facts of ``data``, or ``None`` when it is not one of the four accepted formats."""
    kind = image_format(data)
    if kind is None:
        return None
    reader = {"PNG": _png_size, "JPEG": _jpeg_size, "GIF": _gif_size, "WEBP": _webp_size}[kind]
    try:
        size = reader(data)
    except (struct.error, IndexError, ValueError):
        size = None
    width, height = size if size and size[0] > 0 and size[1] > 0 else (None, None)
    return ImageFacts(kind, MIME_TYPES[kind], width, height)


def human_bytes(size: int) -> str:
    """``512 B``, ``12.3 KiB``, ``4.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The first chunk must be IHDR: length (4), b"IHDR", width (4), height (4).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments up to the first start-of-frame, which holds height then width."""
    position = 2
    end = len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            return None
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any frame header: no size to be had
            return None
        position += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit width-1 and height-1
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":  # lossless: signature 0x2F, then 14-bit width-1 and height-1
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code 9D 01 2A, then 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


__all__ = ["MIME_TYPES", "ImageFacts", "facts", "human_bytes", "image_format"]
