"""Plan what goes on the wire, and when: pacing, keep-alives and faults.

The plan is a plain list of actions computed before anything is sent, which
keeps timing and fault rules in one pure, testable place; :mod:`.responses`
only executes it.  Data chunks are counted without keep-alive comments and
without the injected malformed line, so ``drop_after=N`` always means N real
chunks reached the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deepseek_magic.emulator.config import EmulatorConfig
from deepseek_magic.emulator.faults import Fault

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Write:
    """Send these bytes."""

    data: bytes


@dataclass(frozen=True)
class Wait:
    """Wait this long, sending ``filler`` every ``interval`` seconds meanwhile (if any)."""

    seconds: float
    filler: bytes = b""
    interval: float = 0.0


@dataclass(frozen=True, eq=False)
class Pace:
    """Wait one token's time at the pace the emulator has *now*.

    Read when the wait starts, not when the plan is made, so the speed can change in the middle of a reply:
    a browser test watches the first tokens arrive slowly, then lets the rest come at once.
    """

    config: EmulatorConfig

    @property
    def seconds(self) -> float:
        return 1.0 / self.config.tps if self.config.tps > 0 else 0.0


@dataclass(frozen=True)
class Abort:
    """Close the connection abruptly: the response body stays incomplete."""


Action = Write | Wait | Pace | Abort


def sse(payload: dict[str, Any]) -> bytes:
    """One SSE event with compact JSON, as DeepSeek frames it."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def malformed_line(payload: dict[str, Any]) -> bytes:
    """A ``data:`` line whose JSON is cut off mid-string."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text[: max(len(text) // 2, 1)].encode() + b"\n\n"


MIB = 1024 * 1024


def flood(mib: int, filler: bytes = b"x") -> list[Action]:
    """``mib`` MiB as 1 MiB writes of one shared buffer (the emulator never holds the whole flood)."""
    piece = filler * MIB
    return [Write(piece) for _ in range(mib)]


def deep(depth: int) -> bytes:
    """JSON nested ``depth`` arrays deep: valid, but deeper than a recursive parser can go."""
    return b"[" * depth + b"]" * depth


def usage_only_chunk(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream's usage in a chunk with no choices (what a server sends when it produced nothing)."""
    last = dict(chunks[-1]) if chunks else {}
    usage = next((chunk["usage"] for chunk in reversed(chunks) if chunk.get("usage")), None)
    return {**last, "choices": [], "usage": usage}


def stream_plan(chunks: list[dict[str, Any]], config: EmulatorConfig, fault: Fault) -> list[Action]:
    """Actions for an SSE stream of ``chunks`` followed by ``[DONE]``."""
    actions: list[Action] = []
    if fault.keepalive:
        actions.append(Write(KEEPALIVE * fault.keepalive))
    if fault.done_only:
        return [*actions, Write(DONE)]
    if fault.usage_only:
        return [*actions, Write(sse(usage_only_chunk(chunks))), Write(DONE)]
    if fault.huge_line:  # one real chunk, then a line that never ends
        first = [Write(sse(chunks[0]))] if chunks else []
        return [*actions, *first, Write(b"data: "), *flood(fault.huge_line), Abort()]
    if config.ttft > 0:
        actions.append(Wait(config.ttft, KEEPALIVE, config.keepalive_interval))
    gap: Wait | Pace = Wait(fault.trickle) if fault.trickle is not None else Pace(config)
    for index, chunk in enumerate(chunks):
        if fault.stall_at == index and fault.stall:
            actions.append(Wait(fault.stall))
        if fault.drop_after == index:
            actions.append(Abort())
            return actions
        if fault.malformed_after == index:
            actions.append(Write(malformed_line(chunk)))
        if fault.deep_json and index == 1:
            actions.append(Write(b"data: " + deep(fault.deep_json) + b"\n\n"))
        if index > 0 and (isinstance(gap, Pace) or gap.seconds > 0):
            actions.append(gap)
        actions.append(Write(sse(chunk)))
    if fault.stall_at is not None and fault.stall_at >= len(chunks) and fault.stall:
        actions.append(Wait(fault.stall))
    if fault.malformed_after is not None and fault.malformed_after >= len(chunks) and chunks:
        actions.append(Write(malformed_line(chunks[-1])))
    if fault.drop_after is not None:
        actions.append(Abort())
        return actions
    actions.append(Write(DONE))
    return actions


def body_plan(body: bytes, tokens: int, config: EmulatorConfig, fault: Fault) -> list[Action]:
    """Actions for a non-stream JSON body.

    DeepSeek sends blank lines while a non-stream request waits; the wait is the
    time to first token plus the time to generate every token at ``tps``.  For
    faults, ``drop_after=N`` cuts the body after N bytes and aborts,
    ``malformed_after`` sends broken JSON, ``keepalive=N`` sends N blank lines.
    """
    actions: list[Action] = []
    if fault.keepalive:
        actions.append(Write(b"\n" * fault.keepalive))
    wait = config.ttft + (tokens / config.tps if config.tps > 0 else 0.0)
    if wait > 0:
        actions.append(Wait(wait, b"\n", config.keepalive_interval))
    if fault.stall:
        actions.append(Wait(fault.stall))
    if fault.huge_line:
        actions += flood(fault.huge_line)
    elif fault.deep_json:
        actions.append(Write(deep(fault.deep_json)))
    elif fault.drop_after is not None:
        actions += [Write(body[: min(fault.drop_after, max(len(body) - 1, 0))]), Abort()]
    elif fault.malformed_after is not None:
        actions.append(Write(body[: max(len(body) // 2, 1)] + b"\n"))
    else:
        actions.append(Write(body))
    return actions


def is_simple(actions: list[Action]) -> bool:
    """True when the plan is one write: a plain response will do."""
    return len(actions) == 1 and isinstance(actions[0], Write)
