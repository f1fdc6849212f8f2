"""The static form of a reply: what a saved notebook shows without a kernel.

A Markdown bundle (with a plain-text twin) renders on GitHub, nbviewer and in
JupyterLab after reopening, with no widget state needed. Reasoning goes into
a ``<details>`` block so it is folded by default.

JupyterLab renders a trusted ``text/markdown`` output without sanitizing the
HTML inside it, so every piece of text from a model, a tool, a server or a
prompt goes through :func:`.render.markdown_text` (plain text) or
:func:`.render.markdown_safe` (the answer, Markdown by design) here, and the
HTML alternate through the sanitizer: one rule, applied in this module for
every view that leaves a bundle behind.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deepseek_magic.core.events import Reply
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.render import entities, markdown_safe, markdown_text


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
    if reply.matched_stop is not None:
        parts.append(f"at stop {reply.matched_stop!r}")
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
    trace: Sequence[ToolResult] = (),
) -> str:
    """The reply as Markdown: header, folded reasoning, tool trace, answer, footer."""
    lines: list[str] = []
    if header is not None:
        lines.append(f"<sub>{markdown_text(header.text())}</sub>\n")
    if reply.reasoning:
        summary = progress.reasoning_title() if (live and progress) else reasoning_summary(reply, progress)
        body = markdown_text(reply.reasoning)
        lines.append(f"<details><summary>{markdown_text(summary)}</summary>\n\n{body}\n\n</details>\n")
    if trace:
        lines.append(tool_trace_markdown(trace))
    if len(reply.choices) > 1:
        for number, choice in enumerate(reply.choices, 1):
            lines.append(
                f"**Choice {number}** <sub>{markdown_text(choice.finish_reason or '')}</sub>\n\n"
                f"{markdown_safe(choice.content)}\n"
            )
    elif reply.content:
        lines.append(markdown_safe(reply.content) + "\n")
    elif live:
        lines.append("*…*\n")
    for call in reply.tool_calls:
        lines.append(f"<code>{entities(f'{call.name}({call.arguments})')}</code>\n")
    if reply.logprobs and not live:
        lines.append(logprobs_markdown(reply.logprobs))
    if reply.error:
        lines.append(f"**Error:** {markdown_text(reply.error)}\n")
    for warning in reply.warnings:
        lines.append(f"*{markdown_text(warning)}*\n")
    if not live:
        footer = footer_text(reply, progress, status)
        if footer:
            lines.append(f"<sub>{markdown_text(footer)}</sub>")
    return "\n".join(lines)


def logprobs_markdown(logprobs: dict[str, list[dict[str, Any]]], limit: int = 60) -> str:
    """A folded table of the first tokens with their log-probabilities and top alternatives."""
    tokens = logprobs.get("content") or []
    rows = []
    for entry in tokens[:limit]:
        alternatives = ", ".join(
            f"{entities(repr(alt.get('token', '')))} {float(alt.get('logprob', 0.0)):.2f}"
            for alt in (entry.get("top_logprobs") or [])[1:4]
        )
        token = entities(repr(entry.get("token", "")))
        rows.append(f"<tr><td>{token}</td><td>{float(entry.get('logprob', 0.0)):.3f}</td><td>{alternatives}</td></tr>")
    more = f" (first {limit} of {len(tokens)})" if len(tokens) > limit else ""
    table = "<table><tr><th>token</th><th>logprob</th><th>alternatives</th></tr>" + "".join(rows) + "</table>"
    return f"<details><summary>Log-probabilities{more}</summary>\n\n{table}\n\n</details>\n"


def tool_trace_markdown(trace: Sequence[ToolResult]) -> str:
    """Each tool call with its arguments, time, and folded result."""
    items = []
    for result in trace:
        mark = "✗" if result.failed else "✓"
        call = f"{result.call.name}({result.call.arguments})"
        shown = result.content if len(result.content) <= 2000 else result.content[:2000] + "…"
        items.append(
            f"<details><summary>{mark} <code>{entities(call)}</code> · {result.seconds:.2f} s</summary>\n\n"
            f"<pre>{entities(shown)}</pre>\n\n</details>"
        )
    return "\n".join(items) + "\n"


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
    trace: Sequence[ToolResult] = (),
) -> dict[str, str]:
    """A display bundle: ``text/markdown`` with a ``text/plain`` fallback."""
    return {
        "text/markdown": to_markdown(reply, header, progress, status, live=live, trace=trace),
        "text/plain": to_plain(reply, progress, status),
    }


def to_html(
    reply: Reply,
    header: ReplyHeader | None = None,
    progress: ReplyProgress | None = None,
    status: str = "complete",
    trace: Sequence[ToolResult] = (),
) -> str:
    """The finished reply as one self-contained HTML fragment, for the output a notebook keeps.

    Unlike :func:`to_markdown`, the answer is rendered and sanitized here, in
    the kernel: the live view already did so, and a frontend that prefers
    ``text/html`` (JupyterLab right after running, where outputs are trusted)
    must never see the model's raw markup. Reasoning uses ``<br>`` rather
    than CSS for line breaks because GitHub's and JupyterLab's sanitizers may
    drop ``style`` attributes.
    """
    from deepseek_magic.ui.render import escape_text, markdown_to_html

    parts = ['<div class="deepseek-magic-reply">']
    if header is not None:
        parts.append(f"<div><sub>{html.escape(header.text())}</sub></div>")
    if reply.reasoning:
        summary = html.escape(reasoning_summary(reply, progress))
        parts.append(f"<details><summary>{summary}</summary>{escape_text(reply.reasoning, breaks=True)}</details>")
    if trace:
        parts.append(tool_trace_markdown(trace).replace("\n\n", ""))
    if len(reply.choices) > 1:
        for number, choice in enumerate(reply.choices, 1):
            parts.append(f"<p><b>Choice {number}</b></p>{markdown_to_html(choice.content)}")
    elif reply.content:
        parts.append(markdown_to_html(reply.content))
    if reply.logprobs:
        parts.append(logprobs_markdown(reply.logprobs).replace("\n\n", ""))
    if reply.tool_calls:
        calls = "".join(
            f"<pre>{html.escape(call.name)}({html.escape(call.arguments)})</pre>" for call in reply.tool_calls
        )
        parts.append(f"<details><summary>Tool calls ({len(reply.tool_calls)})</summary>{calls}</details>")
    if reply.error:
        parts.append(f"<p><b>Error:</b> {html.escape(reply.error)}</p>")
    parts.extend(f"<p><i>{html.escape(warning)}</i></p>" for warning in reply.warnings)
    footer = footer_text(reply, progress, status)
    if footer:
        parts.append(f"<div><sub>{html.escape(footer)}</sub></div>")
    parts.append("</div>")
    return "\n".join(parts)


def html_bundle(
    reply: Reply,
    header: ReplyHeader | None = None,
    progress: ReplyProgress | None = None,
    status: str = "complete",
    trace: Sequence[ToolResult] = (),
) -> dict[str, str]:
    """:func:`bundle` plus ``text/html``: what a widget view leaves behind when the reply ends."""
    data = bundle(reply, header, progress, status, trace=trace)
    data["text/html"] = to_html(reply, header, progress, status, trace)
    return data
