"""Prompt token counts, the prefix cache, and DeepSeek's usage object.

DeepSeek reports context-cache hits in whole blocks (observed 128, 256, 448,
512, 896: all multiples of 64).  The emulator keeps a bounded LRU of hashes of
64-token prompt prefixes, so a repeated prompt, or a longer conversation that
starts with an earlier one, reports hits the way the real service does.  The
cache is namespaced by model and ``user_id`` (DeepSeek isolates KV caches per
``user_id``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from deepseek_magic.emulator.prompt import text_of
from deepseek_magic.emulator.request import ChatRequest
from deepseek_magic.emulator.tokens import tokenize

BLOCK_TOKENS = 64


class PromptCache:
    """Bounded store of prompt-prefix block hashes."""

    def __init__(self, block: int = BLOCK_TOKENS, capacity: int = 50_000) -> None:
        self.block = block
        self.capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def hit_tokens(self, namespace: str, tokens: list[str]) -> int:
        """Tokens served from cache for this prompt; the prompt is then stored."""
        keys = self._block_keys(namespace, tokens)
        hits = 0
        with self._lock:
            for key in keys:
                if key not in self._seen:
                    break
                hits += 1
            for key in keys:
                self._seen[key] = None
                self._seen.move_to_end(key)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
        return hits * self.block

    def _block_keys(self, namespace: str, tokens: list[str]) -> list[bytes]:
        running = hashlib.blake2b(namespace.encode(), digest_size=16)
        keys = []
        # The last token is never served from cache: a hit always leaves some miss.
        for start in range(0, len(tokens) - self.block, self.block):
            running.update("\x1f".join(tokens[start : start + self.block]).encode() + b"\x1e")
            keys.append(running.copy().digest())
        return keys


def prompt_tokens(request: ChatRequest) -> list[str]:
    """Tokens of the prompt as the model would see it (template markers included).

    ``reasoning_content`` of earlier turns only counts when ``tools`` are present:
    DeepSeek concatenates it into the context only then.
    """
    parts: list[str] = []
    if request.tools:
        parts.append("<tools>" + json.dumps(request.tools, sort_keys=True, ensure_ascii=False))
    for message in request.messages:
        parts.append(f"<|{message.get('role')}|>")
        parts.append(text_of(message.get("content")))
        if request.tools and isinstance(message.get("reasoning_content"), str):
            parts.append(message["reasoning_content"])
        for call in message.get("tool_calls") or []:
            parts.append(json.dumps(call.get("function"), sort_keys=True, ensure_ascii=False))
    parts.append("<|assistant|>")
    return tokenize("\n".join(parts))


def usage_object(*, prompt: int, hit: int, completion: int, reasoning: int, thinking: bool) -> dict[str, Any]:
    """DeepSeek's usage object, keys in the recorded order.

    ``completion_tokens_details`` appears only in thinking mode, as in the
    recordings (non-thinking answers have no such key).
    """
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
    }
    if thinking:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    usage["prompt_cache_hit_tokens"] = hit
    usage["prompt_cache_miss_tokens"] = prompt - hit
    return usage
