"""Image blocks in emulated requests: refused for a model without vision, otherwise read and described.

DeepSeek's Flash takes ``{"type": "image_url", "image_url": {"url": "data:…;base64,…"}}``
parts and judges the format by the content (JPEG, PNG, GIF, WebP); Pro takes
none. The emulator does the same checks, and describes each image it received
(format, pixel size, bytes) in its reply, so the offline demo shows that the
image arrived intact. A remote ``http(s)`` URL is accepted and described as
not fetched (the emulator never goes to the network). Each image counts as
:data:`IMAGE_TOKENS` prompt tokens, DeepSeek's stated ceiling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from deepseek_magic.core.imagebytes import facts
from deepseek_magic.emulator.errors import ApiError, bad_request

#: Prompt tokens one image is billed (DeepSeek: "at most 384").
IMAGE_TOKENS = 384
#: Models (as echoed) that accept image parts.
VISION_MODELS = frozenset({"deepseek-flash", "deepseek-v4-flash"})

_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.ASCII)


@dataclass(frozen=True)
class SeenImage:
    """One image part as the emulator understood it."""

    description: str
    #: A short digest of the bytes (or URL): the image's identity in the prompt cache.
    digest: str


def image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [part for part in content if isinstance(part, dict) and part.get("type") == "image_url"]


def check_images(messages: list[dict[str, Any]], model: str) -> None:
    """400 for image parts sent to a model without vision, or for an image that is not one."""
    for index, message in enumerate(messages):
        parts = image_parts(message)
        if not parts:
            continue
        if model not in VISION_MODELS:
            raise bad_request(f"Model {model} does not support image input (messages[{index}] has an image)")
        for part in parts:
            read_image(part, f"messages[{index}]")


def read_image(part: dict[str, Any], where: str) -> SeenImage:
    """What ``part`` holds; :class:`ApiError` when its URL is neither a valid data: URI nor http(s)."""
    holder = part.get("image_url")
    url = holder.get("url") if isinstance(holder, dict) else None
    if not isinstance(url, str) or not url:
        raise bad_request(f"Invalid image_url in {where}: missing `url`")
    if url.startswith(("http://", "https://")):
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return SeenImage(f"a remote image at {url[:80]} (not fetched by the emulator)", digest)
    match = _DATA_URI.match(url)
    if match is None:
        raise bad_request(f"Invalid image_url in {where}: expected a base64 data: URI or an http(s) URL")
    try:
        data = base64.b64decode(url[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"Invalid image_url in {where}: the data is not valid base64") from None
    found = facts(data)
    if found is None:
        raise bad_request(f"Invalid image in {where}: the data is not a JPEG, PNG, GIF or WebP image")
    pixels = f", {found.width}×{found.height} pixels" if found.width and found.height else ""
    description = f"{found.format}{pixels}, {len(data):,} bytes"
    return SeenImage(description, hashlib.sha256(data).hexdigest()[:16])


def seen_images(message: dict[str, Any]) -> list[SeenImage]:
    """The images of one (already checked) message, in order."""
    out = []
    for part in image_parts(message):
        try:
            out.append(read_image(part, "message"))
        except ApiError:
            continue
    return out
