"""The chat's transcript as a static display bundle: what a saved notebook keeps of a chat.

Each finished exchange is the user's message (text, escaped: it is shown,
not interpreted), the reply in its static form (:mod:`.static`, the one
rendering rule for model text) and, when something went wrong, one line
saying what. ``text/html`` is sanitized here in the kernel, like every
static reply; ``text/markdown`` and ``text/plain`` are its twins for
renderers that prefer them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from deepseek_magic.core.events import Reply
from deepseek_magic.ui import static
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.render import markdown_text


@dataclass
class ChatEntry:
    """One message sent from the chat and what came of it."""

    key: str
    text: str
    reply: Reply | None = None
    error: str | None = None
    #: complete, interrupted, partial or error (as the reply views name it).
    status: str = "complete"
    progress: ReplyProgress | None = None


def user_bundle(text: str) -> dict[str, str]:
    """The user's message: escaped, line breaks kept."""
    return {
        "text/markdown": f"**You:** {markdown_text(text)}",
        "text/html": f"<p><b>You:</b> {html.escape(text).replace(chr(10), '<br>')}</p>",
        "text/plain": f"You: {text}",
    }


def title(session: str, count: int) -> str:
    noun = "message" if count == 1 else "messages"
    return f"DeepSeek chat · session {session} · {count} {noun}"


def transcript_bundle(entries: Sequence[ChatEntry], *, session: str) -> dict[str, str]:
    """Every entry in order, as sanitized HTML with Markdown and plain-text twins."""
    heading = title(session, len(entries))
    parts_html = ['<div class="deepseek-magic-chat">', f"<p><b>{html.escape(heading)}</b></p>"]
    parts_markdown = [f"**{markdown_text(heading)}**\n"]
    parts_plain = [heading]
    for entry in entries:
        user = user_bundle(entry.text)
        parts_html.append(user["text/html"])
        parts_markdown.append(user["text/markdown"] + "\n")
        parts_plain.append(user["text/plain"])
        if entry.reply is not None:
            parts_html.append(static.to_html(entry.reply, None, entry.progress, entry.status))
            parts_markdown.append(static.to_markdown(entry.reply, None, entry.progress, entry.status) + "\n")
            parts_plain.append(static.to_plain(entry.reply, entry.progress, entry.status))
        if entry.error:
            parts_html.append(f"<p><b>{html.escape(entry.error)}</b></p>")
            parts_markdown.append(f"**{markdown_text(entry.error)}**\n")
            parts_plain.append(entry.error)
    parts_html.append("</div>")
    return {
        "text/html": "\n".join(parts_html),
        "text/markdown": "\n".join(parts_markdown),
        "text/plain": "\n".join(parts_plain),
    }
