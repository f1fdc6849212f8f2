"""The static form of a reply: what a saved notebook shows without a kernel.

A Markdown bundle (with a plain-text twin) renders on GitHub, nbviewer and in
JupyterLab after reopening, with no widget state needed. Reasoning goes into
a ``<details>`` block so it is folded by default. The reasoning is model text
and goes in escaped, so it cannot inject markup; the answer is Markdown by
design and is left to the frontend's sanitizing Markdown renderer.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ..events import Reply
from .progress import ReplyProgress


@dataclass(frozen=True)
class ReplyHeader:
    """What is being asked of whom, shown above a reply."""

    provider: str
    model: str
    thinking: bool | None = None
    effort: str | None = None
    session: str = "default"

    def text(self) -> str:
        mode = "thinking off" if self.thinking is False else f"thinking {self.effort or 'on'}"
        session = "" if self.session == "default" else f" · session {self.session}"
        return f"{self.provider} · {self.model} · {mode}{session}"


STATUS_BADGES = {
    "interrupted": "⏹ interrupted",
    "partial": "⚠ connection lost (partial reply)",
    "cached": "cached",
    "length": "⚠ stopped at max_tokens",
}


def badges(reply: Reply, status: str = "complete") -> list[str]:
    """Short flags for the footer: interrupted, partial, cached, cut by length."""
    out = []
    if status in STATUS_BADGES:
        out.append(STATUS_BADGES[status])
    if reply.cached:
        out.append(STATUS_BADGES["cached"])
    if reply.finish_reason == "length":
        out.append(STATUS_BADGES["length"])
    if reply.finish_reason == "insufficient_system_resource":
        out.append("⚠ the provider ran out of capacity mid-reply")
    if reply.finish_reason == "content_filter":
        out.append("⚠ stopped by the content filter")
    return out


def footer_text(reply: Reply, progress: ReplyProgress | None, status: str = "complete") -> str:
    """Tokens, time, speed and finish reason on one line."""
    parts: list[str] = []
    usage = reply.usage
    if usage is not None:
        tokens = f"{usage.prompt_tokens:,} prompt"
        if usage.cache_hit_tokens:
            tokens += f" ({usage.cache_hit_tokens:,} cached)"
        tokens += f" + {usage.completion_tokens:,} completion"
        if usage.reasoning_tokens:
            tokens += f" ({usage.reasoning_tokens:,} reasoning)"
        parts.append(tokens + " tokens")
        if usage.cost is not None:
            parts.append(f"${usage.cost:.4f}")
    if progress is not None:
        parts.append(f"{progress.elapsed:.1f} s")
        speed = progress.tokens_per_second
        if speed:
            parts.append(f"{speed:.0f} tok/s")
    if reply.finish_reason:
        parts.append(reply.finish_reason)
    parts.extend(badges(reply, status))
    return " · ".join(parts)


def reasoning_summary(reply: Reply, progress: ReplyProgress | None) -> str:
    if progress is not None:
        return progress.reasoning_title()
    tokens = reply.usage.reasoning_tokens if reply.usage else 0
    return f"Thought · {tokens:,} tokens" if tokens else "Thought"


def to_markdown(
    reply: Reply,
    header: ReplyHeader | None = None,
    progress: ReplyProgress | None = None,
    status: str = "complete",
    *,
    live: bool = False,
) -> str:
    """The reply as Markdown: header, folded reasoning, answer, footer."""
    lines: list[str] = []
    if header is not None:
        lines.append(f"<sub>{html.escape(header.text())}</sub>\n")
    if reply.reasoning:
        summary = progress.reasoning_title() if (live and progress) else reasoning_summary(reply, progress)
        body = html.escape(reply.reasoning).replace("\n", "<br>\n")
        lines.append(f"<details><summary>{html.escape(summary)}</summary>\n\n{body}\n\n</details>\n")
    if reply.content:
        lines.append(reply.content + "\n")
    elif live:
        lines.append("*…*\n")
    for call in reply.tool_calls:
        lines.append(f"`{call.name}({html.escape(call.arguments)})`\n")
    if reply.error:
        lines.append(f"**Error:** {html.escape(reply.error)}\n")
    for warning in reply.warnings:
        lines.append(f"*{html.escape(warning)}*\n")
    if not live:
        footer = footer_text(reply, progress, status)
        if footer:
            lines.append(f"<sub>{html.escape(footer)}</sub>")
    return "\n".join(lines)


def to_plain(reply: Reply, progress: ReplyProgress | None = None, status: str = "complete") -> str:
    """The reply as plain text (the ``text/plain`` twin, and the terminal's final line)."""
    parts = []
    if reply.reasoning:
        parts.append(f"[{reasoning_summary(reply, progress)}]")
    parts.append(reply.content)
    footer = footer_text(reply, progress, status)
    if footer:
        parts.append(f"-- {footer}")
    return "\n".join(part for part in parts if part)


def bundle(
    reply: Reply,
    header: ReplyHeader | None = None,
    progress: ReplyProgress | None = None,
    status: str = "complete",
    *,
    live: bool = False,
) -> dict[str, str]:
    """A display bundle: ``text/markdown`` with a ``text/plain`` fallback."""
    return {
        "text/markdown": to_markdown(reply, header, progress, status, live=live),
        "text/plain": to_plain(reply, progress, status),
    }
