"""Images in prompts: figures, PIL images, IPython images and image bytes as request blocks.

A prompt can carry images for a model whose registry entry says ``vision``
(``deepseek-flash``; not ``deepseek-v4-pro``). Each image goes beside the text
as an OpenAI-style block, ``{"type": "image_url", "image_url": {"url":
"data:image/png;base64,…"}}``. The format is read from the bytes (JPEG, PNG,
GIF, WebP: :mod:`deepseek_magic.core.imagebytes`), never from a file name.

Sources, recognised by duck type and class name so that neither matplotlib nor
Pillow is imported to find out (both stay optional):

* a matplotlib ``Figure``: rendered to PNG with ``savefig`` at its own dpi;
* a PIL ``Image``: encoded as PNG (converted to RGBA first when PNG cannot hold its mode);
* an ``IPython.display.Image`` holding data (``Image(filename=…)`` or ``Image(data=…)``;
  a URL-only image is refused: there are no bytes to send);
* ``bytes``/``bytearray``/``memoryview`` whose first bytes are one of the four formats.

History rule (also in the README): an image is sent with the turn that carries
it and re-sent with the requests of the next :data:`HISTORY_TURNS` turns, so
follow-up questions ("and the legend?") still see it; after that, and for
every request to a model without vision, it is replaced in the history by a
one-line text placeholder naming it (``[image 1: PNG 640×480, not re-sent]``).
Re-sending costs little (an image is at most 384 input tokens, and an
unchanged prefix is a cache hit) but each copy adds its bytes to a request
body DeepSeek caps at 48 MiB, so the window keeps long illustrated
conversations sendable; the body limit is still checked on every request.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import Any, Final

from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.imagebytes import facts, human_bytes, image_format

#: Turns after its own for which an image is re-sent (see the module docstring).
HISTORY_TURNS: Final = 3
#: Longest side of a header thumbnail, in CSS pixels.
THUMBNAIL_SIDE: Final = 96
#: Without Pillow the original bytes serve as the thumbnail up to this size; above it only the label shows.
THUMBNAIL_RAW_LIMIT: Final = 256 * 1024
#: PIL modes PNG stores as they are; any other is converted to RGBA first.
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


class ImageError(ConfigError):
    """An image could not be turned into a request block; nothing was sent."""


@dataclass(frozen=True)
class ImageData:
    """Validated image bytes with what they are: ready to become a block, a placeholder or a thumbnail."""

    data: bytes
    format: str
    mime: str
    width: int | None = None
    height: int | None = None
    source: str = "bytes"

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "bytes") -> ImageData:
        """``data`` checked by its magic bytes; :class:`ImageError` when it is not JPEG, PNG, GIF or WebP."""
        found = facts(data)
        if found is None:
            raise ImageError(f"{source}: not a JPEG, PNG, GIF or WebP image (judged by its first bytes)")
        return cls(data, found.format, found.mime, found.width, found.height, source)

    def describe(self) -> str:
        """``PNG 640×480, 12.3 KiB``."""
        pixels = f" {self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.format}{pixels}, {human_bytes(len(self.data))}"

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def block(self) -> dict[str, Any]:
        """The request's content part."""
        return {"type": "image_url", "image_url": {"url": self.data_uri}}

    def placeholder(self, number: int) -> str:
        """The text that stands in for this image where it is not re-sent."""
        pixels = f" {self.width}×{self.height}" if self.width and self.height else ""
        return f"[image {number}: {self.format}{pixels}, not re-sent]"

    def to_dict(self) -> dict[str, Any]:
        """For session files: the bytes as base64 (re-validated on load)."""
        return {"data": base64.b64encode(self.data).decode("ascii"), "source": self.source}

    @classmethod
    def from_dict(cls, raw: Any) -> ImageData:
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), str):
            raise ValueError("an image must be an object with base64 'data'")
        try:
            data = base64.b64decode(raw["data"], validate=True)
        except ValueError:
            raise ValueError("an image's data is not base64") from None
        return cls.from_bytes(data, str(raw.get("source") or "bytes"))


def is_image(value: Any) -> bool:
    """Whether ``value`` is an image source this module can send; imports nothing to find out."""
    return _kind(value) is not None


def as_image(value: Any) -> ImageData:
    """``value`` (a figure, a PIL image, an IPython image or image bytes) as validated image bytes."""
    if isinstance(value, ImageData):
        return value
    kind = _kind(value)
    if kind is None:
        raise ImageError(
            f"{type(value).__name__} is not an image: use a matplotlib Figure, a PIL Image, "
            "an IPython.display.Image or JPEG/PNG/GIF/WebP bytes"
        )
    try:
        if kind == "bytes":
            return ImageData.from_bytes(bytes(value), "bytes")
        if kind == "figure":
            buffer = io.BytesIO()
            value.savefig(buffer, format="png")
            return ImageData.from_bytes(buffer.getvalue(), "matplotlib Figure")
        if kind == "pil":
            image = value if value.mode in _PNG_MODES else value.convert("RGBA")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return ImageData.from_bytes(buffer.getvalue(), "PIL Image")
        data = getattr(value, "data", None)
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(
                "IPython Image has no image data (only a URL?): create it with data= or filename= to send it"
            )
        return ImageData.from_bytes(bytes(data), "IPython Image")
    except ImageError:
        raise
    except Exception as exc:  # a figure that fails to draw, an image that fails to encode: one line
        raise ImageError(f"the {_NAMES[kind]} could not be encoded: {type(exc).__name__}: {exc}") from None


_NAMES = {"bytes": "image bytes", "figure": "matplotlib Figure", "pil": "PIL Image", "ipython": "IPython Image"}


def _kind(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes" if image_format(bytes(value[:16])) is not None else None
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    names = {klass.__name__ for klass in cls.__mro__}
    if module.startswith("matplotlib") and "Figure" in names and callable(getattr(value, "savefig", None)):
        return "figure"
    if module.startswith("PIL") and "Image" in names and callable(getattr(value, "save", None)):
        return "pil"
    if module.startswith("IPython") and "Image" in names and hasattr(value, "data"):
        return "ipython"
    return None


def accepts_images(provider: str, model: str) -> bool:
    """Whether the registry says ``model`` on ``provider`` takes images (a model it does not list: no)."""
    from deepseek_magic.providers import get_provider
    from deepseek_magic.providers.base import find_model

    info = find_model(get_provider(provider).models, model)
    return info is not None and info.vision


def check_vision(provider: str, model: str) -> None:
    """One :class:`ImageError` line when ``model`` cannot take images, naming those of the provider that can."""
    if accepts_images(provider, model):
        return
    from deepseek_magic.providers import get_provider

    found = get_provider(provider)
    able = [info.name for info in found.models if info.vision]
    where = f"; on {found.display_name} use {' or '.join(able)} (-m/--model)" if able else ""
    raise ImageError(f"{model} does not accept images{where}; nothing was sent")


def blocks(text: str, images: list[ImageData]) -> str | list[dict[str, Any]]:
    """A user message's ``content``: the text alone, or the text part followed by one block per image."""
    if not images:
        return text
    return [{"type": "text", "text": text}, *(image.block() for image in images)]


def placeholders(text: str, images: list[ImageData]) -> str:
    """The text with a placeholder line per image (for a turn whose images are no longer sent)."""
    if not images:
        return text
    return "\n".join([text, *(image.placeholder(number) for number, image in enumerate(images, 1))])


@dataclass(frozen=True)
class Thumbnail:
    """A small picture of an image for the reply header, built only from validated bytes.

    ``uri`` is a ``data:`` URI made here from bytes whose format was checked
    (``None`` when no small copy could be made); ``label`` is our own text.
    Neither ever holds model or user text, so the HTML below is safe to show.
    """

    uri: str | None
    width: int
    height: int
    label: str

    def html(self) -> str:
        label = html.escape(self.label)
        if self.uri is None:
            return f"<code>{label}</code>"
        return (
            f'<img src="{html.escape(self.uri)}" width="{self.width}" height="{self.height}" '
            f'alt="{label}" title="{label}">'
        )


def thumbnail(image: ImageData, side: int = THUMBNAIL_SIDE) -> Thumbnail:
    """A thumbnail of ``image`` at most ``side`` pixels on its longer side.

    With Pillow (which matplotlib pulls in) a small PNG copy is made; without
    it the original serves when it is small, else only the label shows.
    """
    label = image.describe()
    width, height = _fit(image.width or side, image.height or side, side)
    small = _pillow_copy(image, side)
    if small is not None:
        return Thumbnail(small.data_uri, *_fit(small.width or width, small.height or height, side), label)
    if len(image.data) <= THUMBNAIL_RAW_LIMIT:
        return Thumbnail(image.data_uri, width, height, label)
    return Thumbnail(None, width, height, label)


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _pillow_copy(image: ImageData, side: int) -> ImageData | None:
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            opened.thumbnail((side, side))
            small = opened if opened.mode in ("RGB", "RGBA", "L", "LA") else opened.convert("RGBA")
            buffer = io.BytesIO()
            small.save(buffer, format="PNG")
        return ImageData.from_bytes(buffer.getvalue(), image.source)
    except Exception:  # a header Pillow cannot read: fall back to the label
        return None


__all__ = [
    "HISTORY_TURNS",
    "ImageData",
    "ImageError",
    "Thumbnail",
    "accepts_images",
    "as_image",
    "blocks",
    "check_vision",
    "is_image",
    "placeholders",
    "thumbnail",
]
