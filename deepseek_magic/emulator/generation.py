"""Turn a composed reply into the token-by-token deltas a choice emits.

One delta is one token, so usage always matches what a client counts.  Stop
sequences cut the answer before the stop string (finish ``stop``); ``max_tokens``
cuts the whole sequence, reasoning included (finish ``length``) — when that
happens while still reasoning the answer stays empty, as in the real
issue-19381 recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deepseek_magic.emulator.replies import Reply
from deepseek_magic.emulator.tokens import tokenize

DeltaKind = Literal["reasoning", "content", "tool_head", "tool_args"]


@dataclass(frozen=True)
class Delta:
    """One streamed token: reasoning, answer text, or a piece of a tool call."""

    kind: DeltaKind
    text: str = ""
    tool_index: int = 0
    call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class ToolCallOut:
    """A (possibly truncated) tool call as the client will see it."""

    index: int
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Choice:
    """Everything one choice sends, in order, and how it ends."""

    index: int
    deltas: tuple[Delta, ...]
    finish_reason: str

    @property
    def reasoning(self) -> str:
        return "".join(d.text for d in self.deltas if d.kind == "reasoning")

    @property
    def content(self) -> str:
        return "".join(d.text for d in self.deltas if d.kind == "content")

    @property
    def reasoning_tokens(self) -> int:
        return sum(1 for d in self.deltas if d.kind == "reasoning")

    @property
    def completion_tokens(self) -> int:
        return len(self.deltas)

    @property
    def tool_calls(self) -> list[ToolCallOut]:
        calls: dict[int, ToolCallOut] = {}
        for delta in self.deltas:
            if delta.kind == "tool_head":
                calls[delta.tool_index] = ToolCallOut(delta.tool_index, delta.call_id, delta.name, "")
            elif delta.kind == "tool_args":
                call = calls[delta.tool_index]
                calls[delta.tool_index] = ToolCallOut(call.index, call.call_id, call.name, call.arguments + delta.text)
        return [calls[i] for i in sorted(calls)]


def realise(reply: Reply, *, index: int, max_tokens: int | None, stop: tuple[str, ...]) -> Choice:
    """Apply stop sequences and ``max_tokens`` to ``reply``."""
    content, stopped = cut_at_stop(reply.content, stop)
    deltas: list[Delta] = [Delta("reasoning", piece) for piece in tokenize(reply.reasoning)]
    deltas += [Delta("content", piece) for piece in tokenize(content)]
    for tool_index, call in enumerate(reply.tool_calls):
        deltas.append(Delta("tool_head", "", tool_index, call.call_id, call.name))
        deltas += [Delta("tool_args", piece, tool_index) for piece in tokenize(call.arguments)]
    if max_tokens is not None and len(deltas) > max_tokens:
        return Choice(index, tuple(deltas[:max_tokens]), "length")
    finish = "tool_calls" if reply.tool_calls and not stopped else "stop"
    return Choice(index, tuple(deltas), finish)


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` up to (not including) the earliest stop string, and whether one was found."""
    positions = [pos for pos in (text.find(s) for s in stop if s) if pos >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
