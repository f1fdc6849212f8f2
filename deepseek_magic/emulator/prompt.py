"""Read a conversation and pull simple facts out of prompt text.

Emulated replies should visibly refer to what was asked (so a demo or a test can
tell which request produced which reply), and tool arguments and JSON objects
should reuse values found in the prompt.  These heuristics are deliberately
plain: quoted strings, ``key: value`` labels, capitalised place names, numbers,
bullet lists.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from deepseek_magic.emulator.images import seen_images

_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be been but by can could did do does for from had has have how i if in into is it "
        "its me my no not of on or our please should so than that the their them then there these they this "
        "to was we were what when where which who why will with would you your about also just like give make "
        "tell using use show list some each json return reply answer write keys key fields field ",
    )
)


@dataclass(frozen=True)
class ToolResult:
    """A ``tool`` message answering an earlier call."""

    call_id: str
    name: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """What the reply composer needs to know about ``messages``."""

    system: str
    last_user: str
    previous_user: str
    user_turns: int
    message_count: int
    tool_results: tuple[ToolResult, ...] = ()
    prefix: str | None = None
    #: What each image of the last user message is (format, pixels, bytes), in order.
    images: tuple[str, ...] = ()


def text_of(content: object) -> str:
    """Plain text of a message ``content`` (string, list of parts or null)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""


def read_conversation(messages: list[dict[str, Any]], *, prefix: bool) -> Conversation:
    """Summarise ``messages``; with ``prefix`` the last message is the assistant prefix."""
    history = messages[:-1] if prefix else messages
    user_messages = [m for m in history if m.get("role") == "user"]
    users = [text_of(m.get("content")) for m in user_messages]
    system = "\n".join(text_of(m.get("content")) for m in history if m.get("role") == "system")
    return Conversation(
        system=system,
        last_user=users[-1] if users else "",
        previous_user=users[-2] if len(users) > 1 else "",
        user_turns=len(users),
        message_count=len(messages),
        tool_results=_trailing_tool_results(history),
        prefix=text_of(messages[-1].get("content")) if prefix else None,
        images=tuple(image.description for image in seen_images(user_messages[-1])) if user_messages else (),
    )


def _trailing_tool_results(messages: list[dict[str, Any]]) -> tuple[ToolResult, ...]:
    """Tool messages at the end of the conversation, named after their calls."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                names[call["id"]] = str(call.get("function", {}).get("name", "tool"))
    results: list[ToolResult] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        call_id = str(message.get("tool_call_id", ""))
        results.append(ToolResult(call_id, names.get(call_id, "tool"), text_of(message.get("content"))))
    return tuple(reversed(results))


def one_line(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def blockquote(text: str, limit: int = 400) -> str:
    """Markdown quote of (the start of) ``text``."""
    cut = text.strip()
    if len(cut) > limit:
        cut = cut[: limit - 1].rstrip() + "…"
    lines = cut.splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines[:12])


def words(text: str) -> list[str]:
    """Word-like runs in ``text``."""
    return re.findall(r"[^\W_][\w'\-]*", text)


def key_terms(text: str, limit: int = 4) -> list[str]:
    """The most frequent non-trivial words, first occurrence breaking ties."""
    candidates = [w for w in words(text) if len(w) > 2 and w.lower() not in _STOPWORDS and not w.isdigit()]
    counts = Counter(w.lower() for w in candidates)
    first: dict[str, str] = {}
    for word in candidates:
        first.setdefault(word.lower(), word)
    order = {word: index for index, word in enumerate(first)}
    ranked = sorted(first, key=lambda w: (-counts[w], order[w]))
    return [first[w] for w in ranked[:limit]]


def is_question(text: str) -> bool:
    """Whether the text reads as a question."""
    stripped = text.strip()
    return stripped.endswith("?") or bool(
        re.match(r"(?i)(what|why|how|who|when|where|which|is|are|can|do)\b", stripped)
    )


_DTYPES_LINE = re.compile(r"(?m)^dtypes:\s*(.+)$")


def table_columns(text: str) -> dict[str, str]:
    """Columns and dtypes of a DataFrame summary in the prompt (``dtypes: a: int64, b: str``).

    That is the line deepseek-magic's ``{df}`` interpolation writes, so a
    "describe the columns of {df}" prompt gets one record per real column.
    """
    match = _DTYPES_LINE.search(text)
    if not match:
        return {}
    columns: dict[str, str] = {}
    for part in match.group(1).split(","):
        name, sep, dtype = part.rpartition(":")
        if sep and name.strip():
            columns[name.strip()] = dtype.strip()
    return dict(list(columns.items())[:50])


def bullet_items(text: str) -> list[str]:
    """Items of a bullet or numbered list, or of a short ``items: a, b, c`` list."""
    items = [m.group(1).strip() for m in re.finditer(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$", text)]
    if items:
        return items[:50]
    match = re.search(r"(?i)\b(?:items|records|rows|entries|following)\s*:\s*([^\n]+)", text)
    if match:
        parts = [p.strip(" .\"'`") for p in re.split(r",|;|\band\b", match.group(1))]
        return [p for p in parts if p][:50]
    return []


def labelled_value(text: str, label: str) -> str | None:
    """The value written as ``label: value`` / ``label = value`` / ``label is value``."""
    if not label:
        return None
    pattern = rf"(?i)\b{re.escape(label)}\b[ \t]*(?:[:=]|\bis\b)[ \t]*(\"[^\"\n]*\"|'[^'\n]*'|[^,;\n]+)"
    match = re.search(pattern, text)
    if not match:
        return None
    value = match.group(1).strip().rstrip(".").strip()
    return value.strip("\"'") or None


def quoted_strings(text: str) -> list[str]:
    """Strings in double, curly or single quotes or in backticks, in order."""
    found = re.findall(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|`([^`\n]{1,200})`|(?<!\w)'([^'\n]{1,80})'(?!\w)", text)
    return [next(part for part in groups if part) for groups in found]


def numbers(text: str) -> list[float]:
    """Numbers written in the text, in order."""
    return [float(n) for n in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", text)]


def place(text: str, exclude: tuple[str, ...] = ()) -> str | None:
    """A capitalised phrase after in/for/at/near/..., e.g. "weather in San Francisco"."""
    pattern = r"\b(?:in|for|at|near|from|to|of|about)\s+((?:[A-Z][\w\-']*)(?:\s+[A-Z][\w\-']*)*)"
    for match in re.finditer(pattern, text):
        candidate = match.group(1)
        if candidate not in exclude and candidate.lower() not in _STOPWORDS:
            return candidate
    return None


def proper_phrases(text: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Capitalised phrases that do not start a sentence."""
    found: list[str] = []
    for match in re.finditer(r"(?<=[\w,;:] )((?:[A-Z][\w\-']*)(?:\s+[A-Z][\w\-']*)*)", text):
        phrase = match.group(1)
        if phrase not in exclude and phrase.lower() not in _STOPWORDS and phrase not in found:
            found.append(phrase)
    return found
