"""Images in prompts: every source, the refusal, the body limit, the history rule, the emulator's description."""

from __future__ import annotations

import base64
import html
import io
import json
import random
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from IPython.core.error import UsageError
from IPython.display import Image as IPythonImage
from IPython.utils.capture import capture_output
from PIL import Image
from shell import TestingShell

from deepseek_magic import Session
from deepseek_magic.client import ChatClient
from deepseek_magic.client.flow import check_body_size
from deepseek_magic.conversation.store import SessionFileError
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.imagebytes import facts, image_format
from deepseek_magic.core.limits import MAX_REQUEST_BYTES
from deepseek_magic.features.images import HISTORY_TURNS, ImageData, ImageError, as_image, is_image, thumbnail

matplotlib.use("Agg")
import matplotlib.pyplot as plt

KEY = "sk-emulator"


@pytest.fixture
def session(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    return Session()


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def picture(width: int = 40, height: int = 30, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (width, height), "red" if mode == "RGB" else 0)


def chats(emulator: Any) -> list[dict[str, Any]]:
    return [r.body for r in emulator.requests if r.path.endswith("/chat/completions")]


def image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [p for p in content if p.get("type") == "image_url"] if isinstance(content, list) else []


# --------------------------------------------------------------------------- bytes


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_format_and_pixel_size_come_from_the_bytes(fmt: str) -> None:
    data = encoded(picture(123, 45), fmt)
    found = facts(data)
    assert found is not None and (found.format, found.width, found.height) == (fmt, 123, 45)
    assert found.mime == {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}[fmt]


def test_lossless_and_extended_webp_sizes() -> None:
    lossless = io.BytesIO()
    picture(77, 33).save(lossless, format="WEBP", lossless=True)
    alpha = io.BytesIO()
    picture(64, 20, "RGBA").save(alpha, format="WEBP")
    for data, size in ((lossless.getvalue(), (77, 33)), (alpha.getvalue(), (64, 20))):
        found = facts(data)
        assert found is not None and (found.width, found.height) == size


def test_not_an_image_or_a_broken_header() -> None:
    assert image_format(b"%PDF-1.7 ...") is None and facts(b"<svg xmlns=...>") is None
    truncated = facts(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert truncated is not None and truncated.format == "PNG" and truncated.width is None
    assert not is_image(b"plain text bytes") and not is_image("a string") and not is_image(42)


# ------------------------------------------------------------------------- sources


def test_bytes_of_every_kind_are_an_image_judged_by_content() -> None:
    data = encoded(picture(), "JPEG")
    for value in (data, bytearray(data), memoryview(data)):
        image = as_image(value)
        assert (image.format, image.mime, image.width, image.height) == ("JPEG", "image/jpeg", 40, 30)
    assert as_image(data).block()["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")


def test_a_matplotlib_figure_becomes_a_png() -> None:
    figure, axes = plt.subplots(figsize=(4, 3), dpi=50)
    axes.plot([1, 3, 2])
    try:
        image = as_image(figure)
    finally:
        plt.close(figure)
    assert (image.format, image.width, image.height, image.source) == ("PNG", 200, 150, "matplotlib Figure")
    assert Image.open(io.BytesIO(image.data)).size == (200, 150)


def test_a_pil_image_becomes_a_png_whatever_its_mode() -> None:
    for mode in ("RGB", "RGBA", "L", "P", "CMYK", "F"):
        image = as_image(Image.new(mode, (8, 6)))
        assert (image.format, image.width, image.height, image.source) == ("PNG", 8, 6, "PIL Image")


def test_an_ipython_image_with_data_or_a_file(tmp_path: Path) -> None:
    data = encoded(picture(10, 20), "GIF")
    path = tmp_path / "pic.png"  # the name lies (GIF bytes): the bytes decide
    path.write_bytes(data)
    for value in (IPythonImage(data=data), IPythonImage(filename=str(path))):
        image = as_image(value)
        assert (image.format, image.width, image.height, image.source) == ("GIF", 10, 20, "IPython Image")
    with pytest.raises(ImageError, match="no image data"):
        as_image(IPythonImage(url="https://example.com/a.png", embed=False))


def test_something_else_is_refused_in_one_line() -> None:
    with pytest.raises(ImageError, match="not a JPEG, PNG, GIF or WebP"):
        ImageData.from_bytes(b"GIF8 but not really")
    with pytest.raises(ImageError, match="is not an image"):
        as_image({"not": "an image"})


def test_thumbnails_are_small_and_built_from_checked_bytes() -> None:
    big = as_image(encoded(picture(640, 480), "PNG"))
    small = thumbnail(big)
    assert small.uri is not None and small.uri.startswith("data:image/png;base64,")
    shrunk = Image.open(io.BytesIO(base64.b64decode(small.uri.split(",", 1)[1])))
    assert max(shrunk.size) <= 96 and (small.width, small.height) == (96, 72)
    assert 'alt="PNG 640×480' in small.html() and small.html().startswith('<img src="data:image/png;base64,')


# ------------------------------------------------------------------------ the magic


def test_a_figure_in_a_cell_is_sent_beside_the_text_and_described(ip: TestingShell, emulator: Any) -> None:
    figure, axes = plt.subplots(figsize=(4, 3), dpi=100)
    axes.bar(["a", "b"], [3, 5])
    ip.user_ns["fig"] = figure
    ip.user_ns["photo"] = picture(64, 48)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --view text\nCompare {fig} with {photo}; which is larger?")
    plt.close(figure)
    body = chats(emulator)[-1]
    user = body["messages"][-1]
    assert user["content"][0] == {"type": "text", "text": "Compare [image 1] with [image 2]; which is larger?"}
    urls = [part["image_url"]["url"] for part in image_parts(user)]
    assert len(urls) == 2 and all(url.startswith("data:image/png;base64,") for url in urls)
    shown = captured.stdout  # a terminal shell: the text view
    assert "**Image 1:** PNG, 400×300 pixels" in shown and "**Image 2:** PNG, 64×48 pixels" in shown
    assert "image 1: PNG 400×300" in shown and "image 2: PNG 64×48" in shown, "the header names what was sent"


def test_the_reply_header_shows_a_thumbnail_of_each_image(ip: TestingShell) -> None:
    from deepseek_magic.core.events import Reply, Usage
    from deepseek_magic.ui import static
    from deepseek_magic.ui.display_view import DisplayHandleView

    found = ip.magics_manager.registry["DeepSeekMagics"]
    images = [as_image(encoded(picture(640, 480), "JPEG")), as_image(encoded(picture(20, 10), "GIF"))]
    header = found._view("text", found.settings, "default", images).header
    assert header.context_window == 1_000_000 and len(header.thumbnails) == 2
    reply = Reply(content="<script>alert(1)</script> done", usage=Usage(prompt_tokens=12_000, completion_tokens=500))
    for rendered in (static.to_markdown(reply, header), static.to_html(reply, header)):
        assert rendered.count('<img src="data:image/png;base64,') == 2, "a thumbnail of each image sent"
        assert 'alt="JPEG 640×480' in rendered and "<script>" not in rendered
        assert "context 1.2% of 1M" in html.unescape(rendered), "the footer shows how full the context is"
    shown: list[Any] = []
    view = DisplayHandleView(header, display=lambda data, **_: shown.append(data))
    view.start()
    view.finish(reply)
    assert any('<img src="data:image/png;base64,' in str(data) for data in shown)


def test_a_model_without_vision_is_refused_before_sending(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["img"] = encoded(picture(), "PNG")
    before = len(chats(emulator))
    with pytest.raises(UsageError, match="deepseek-v4-pro does not accept images; on DeepSeek use deepseek-flash"):
        ip.run_cell("%%deepseek -m deepseek-v4-pro\nWhat is in {img}?")
    assert len(chats(emulator)) == before


def test_dry_run_shortens_image_data(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["img"] = encoded(picture(300, 200), "PNG")
    before = len(chats(emulator))
    with capture_output() as captured:
        ip.run_cell("%%deepseek --dry-run\nDescribe {img}")
    text = "".join(o.data.get("text/plain", "") for o in captured.outputs)
    assert len(chats(emulator)) == before
    assert '"url": "data:image/png;base64,iVBORw0KGgo' in text and "base64 characters)" in text
    assert "1 image ≤384 each" in text


# ------------------------------------------------------------------- the body limit


def test_a_request_over_48_mib_is_refused_before_anything_is_sent(session: Session, emulator: Any) -> None:
    header = encoded(picture(8, 8), "PNG")
    huge = header + b"\0" * (37 * 1024 * 1024)  # 37 MiB of bytes is over 49 MiB of base64
    before = len(chats(emulator))
    with pytest.raises(ConfigError, match=r"the request body is 49\.\d MiB \(1 image in it\), above the 48 MiB"):
        session.ask("What is this?", images=[huge])
    assert len(chats(emulator)) == before and session.turns == []


def test_the_limit_guards_every_request_history_included(
    session: Session, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepseek_magic.client import flow as client

    image = encoded(Image.frombytes("RGB", (200, 200), random.Random(7).randbytes(120_000)), "PNG")
    session.ask("first [image 1]", images=[image])
    size = client.body_size({"messages": [{"role": "user", "content": [as_image(image).block()]}]})
    assert size > 50_000
    monkeypatch.setattr(client, "MAX_REQUEST_BYTES", size + size // 2)  # room for one copy of the image, not two
    before = len(chats(emulator))
    with pytest.raises(ConfigError, match=r"\(2 images in it\)"):
        session.ask("second [image 1]", images=[image])
    assert len(chats(emulator)) == before
    check_body_size({"messages": []})  # a small body passes
    assert MAX_REQUEST_BYTES == 48 * 1024 * 1024


# ------------------------------------------------------------------- the history rule


def test_images_ride_along_for_the_next_turns_then_become_placeholders(session: Session, emulator: Any) -> None:
    session.ask("Look at [image 1]", images=[encoded(picture(50, 40), "PNG")])
    for number in range(HISTORY_TURNS + 1):
        session.ask(f"follow-up {number}")
    bodies = chats(emulator)[-(HISTORY_TURNS + 1) :]
    for body in bodies[:HISTORY_TURNS]:
        assert len(image_parts(body["messages"][0])) == 1, "re-sent with the next HISTORY_TURNS turns"
    oldest = bodies[-1]["messages"][0]
    assert oldest["content"] == "Look at [image 1]\n[image 1: PNG 50×40, not re-sent]"


def test_a_model_without_vision_gets_placeholders_for_earlier_images(session: Session, emulator: Any) -> None:
    session.ask("Look at [image 1]", images=[encoded(picture(), "GIF")])
    reply = session.ask("Now think hard about it", model="deepseek-v4-pro")
    assert reply.content
    first = chats(emulator)[-1]["messages"][0]
    assert first["content"] == "Look at [image 1]\n[image 1: GIF 40×30, not re-sent]"


def test_images_survive_save_and_load(session: Session, tmp_path: Path) -> None:
    data = encoded(picture(12, 34), "WEBP")
    session.ask("Keep [image 1]", images=[data])
    path = session.save(tmp_path / "s.json")
    loaded = Session.load(path, settings=session.settings)
    assert loaded.turns[0].images == [as_image(data)]
    saved = json.loads(path.read_text().splitlines()[1])["images"]
    assert base64.b64decode(saved[0]["data"]) == data
    lines = path.read_text().splitlines()
    turn = json.loads(lines[1])
    turn["images"] = [{"data": base64.b64encode(b"nope").decode()}]
    path.write_text("\n".join([lines[0], json.dumps(turn), ""]))
    with pytest.raises(SessionFileError, match="not a JPEG, PNG, GIF or WebP"):
        Session.load(path, settings=session.settings)


# ------------------------------------------------------------------------ the emulator


def test_the_emulator_checks_image_parts(emulator: Any) -> None:
    client = ChatClient()
    png = as_image(encoded(picture(), "PNG")).block()

    def post(model: str, part: dict[str, Any]) -> Any:
        import httpx

        body = {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]}
        return httpx.post(
            f"{emulator.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )

    assert post("deepseek-flash", png).status_code == 200
    refused = post("deepseek-v4-pro", png)
    assert refused.status_code == 400 and "does not support image input" in refused.json()["error"]["message"]
    bad = post("deepseek-flash", {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}})
    assert bad.status_code == 400 and "not valid base64" in bad.json()["error"]["message"]
    text = post("deepseek-flash", {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}})
    assert text.status_code == 400 and "not a JPEG, PNG, GIF or WebP" in text.json()["error"]["message"]
    client.close()
