"""Stream chunks and non-stream bodies with exactly the recorded shapes.

Key sets, key order and the null/"" patterns follow the real V4 recordings in
shared/fixtures/deepseek-real: the role chunk, reasoning and content deltas,
tool-call head and argument fragments, and a final chunk that carries
``finish_reason`` and usage together (no usage-only chunk).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from deepseek_magic.emulator.generation import Choice, Delta

#: Fingerprint in the recorded V4 shape (32 hex digits), fixed for the emulator.
SYSTEM_FINGERPRINT = hashlib.blake2b(b"deepseek-magic emulator", digest_size=16).hexdigest()


@dataclass(frozen=True)
class Meta:
    """Per-response constants repeated on every chunk."""

    id: str
    created: int
    model: str
    thinking: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int


def stream_chunks(meta: Meta, choices: list[Choice], usage: dict[str, Any]) -> list[dict[str, Any]]:
    """All data chunks of a stream, in order (``[DONE]`` not included).

    Choices are sent one after another; only the very last chunk carries usage.
    """
    chunks: list[dict[str, Any]] = []
    for position, choice in enumerate(choices):
        first = {"role": "assistant", "content": None, "reasoning_content": ""}
        chunks.append(_chunk(meta, choice.index, first if meta.thinking else {"role": "assistant", "content": ""}))
        for delta in choice.deltas:
            chunks.append(_chunk(meta, choice.index, _delta(meta, delta), logprobs=_logprobs_of(meta, delta)))
        final = {"content": "", "reasoning_content": None} if meta.thinking else {"content": ""}
        last = position == len(choices) - 1
        chunks.append(_chunk(meta, choice.index, final, finish=choice.finish_reason, usage=usage if last else None))
    return chunks


def _chunk(
    meta: Meta,
    index: int,
    delta: dict[str, Any],
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    }
    if usage is not None or meta.include_usage:
        chunk["usage"] = usage
    return chunk


def _delta(meta: Meta, delta: Delta) -> dict[str, Any]:
    if delta.kind == "reasoning":
        return {"content": None, "reasoning_content": delta.text}
    if delta.kind == "content":
        return {"content": delta.text, "reasoning_content": None} if meta.thinking else {"content": delta.text}
    if delta.kind == "tool_head":
        head = {
            "index": delta.tool_index,
            "id": delta.call_id,
            "type": "function",
            "function": {"name": delta.name, "arguments": ""},
        }
        return {"tool_calls": [head]}
    return {"tool_calls": [{"index": delta.tool_index, "function": {"arguments": delta.text}}]}


def _logprobs_of(meta: Meta, delta: Delta) -> dict[str, Any] | None:
    if not meta.logprobs or delta.kind != "content":
        return None
    return {"content": [token_logprob(delta.text, meta.top_logprobs)]}


def token_logprob(token: str, top: int) -> dict[str, Any]:
    """A deterministic logprob entry in DeepSeek's shape for ``token``."""
    alternatives = [token, token.strip().upper() or "_", token.strip().lower() + "s", " the", ".", ","]
    entries = []
    for rank, text in enumerate(dict.fromkeys(alternatives)):
        digest = hashlib.blake2b(f"{rank}:{token}".encode(), digest_size=2).digest()
        value = -(rank * 1.5 + int.from_bytes(digest, "big") / 65535 / 10)
        entries.append({"token": text, "logprob": round(value, 6), "bytes": list(text.encode())})
    first = entries[0]
    return {**first, "top_logprobs": entries[: max(top, 0)]}


def completion_body(meta: Meta, choices: list[Choice], usage: dict[str, Any]) -> dict[str, Any]:
    """A non-stream ``chat.completion`` body, keys in the recorded order."""
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [_choice_body(meta, choice) for choice in choices],
        "usage": usage,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _choice_body(meta: Meta, choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if meta.thinking:
        message["reasoning_content"] = choice.reasoning
    calls = choice.tool_calls
    if calls:
        message["tool_calls"] = [
            {
                "index": call.index,
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ]
    logprobs = None
    if meta.logprobs:
        tokens = [d.text for d in choice.deltas if d.kind == "content"]
        logprobs = {"content": [token_logprob(t, meta.top_logprobs) for t in tokens]}
    return {"index": choice.index, "message": message, "logprobs": logprobs, "finish_reason": choice.finish_reason}
