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
import math
import threading
from collections import OrderedDict
from typing import Any

from deepseek_magic.emulator.images import IMAGE_TOKENS, seen_images
from deepseek_magic.emulator.prompt import text_of
from deepseek_magic.emulator.request import ChatRequest
from deepseek_magic.emulator.tokens import prompt_pieces, tokenize, v4_available

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
    """Tokens of the prompt as the model would see it (template markers included), one string each.

    With DeepSeek's tokenizer installed the prompt is written out the way
    DeepSeek V4 encodes a conversation and tokenized whole, as the service
    does; images and the fixed thinking-mode preamble are added as tokens of
    their own. Without it, the older approximation (markers per message, the
    regex split) is used.
    """
    if v4_available():
        return _v4_prompt(request)
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
    return tokenize("\n".join(parts)) + _image_tokens(request)


#: What DeepSeek's service adds that the emulator counts as tokens of its own, as measured on real
#: recordings (the same figures as deepseek_magic/tokens.py; the emulator imports no library module for them):
#: the preamble in front of every thinking-mode prompt, the markup around tool schemas (as a share of their
#: JSON's tokens) and around each tool call of an earlier answer.
THINKING_PREAMBLE = 79
TOOLS_MARKUP_SHARE = 0.4
TOOL_CALL_MARKUP = 12

_BOS, _EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
_USER, _ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
_THINK, _THINK_END = "<think>", "</think>"


def _v4_prompt(request: ChatRequest) -> list[str]:
    messages = request.messages
    keep_reasoning = bool(request.tools) and request.thinking
    last_user = max((i for i, m in enumerate(messages) if m.get("role") in ("user", "tool")), default=-1)
    text = _BOS
    extra = ["<think-preamble>"] * (THINKING_PREAMBLE if request.thinking else 0)
    if request.tools:
        schemas = json.dumps(request.tools, ensure_ascii=False)
        text += schemas
        extra += ["<tools-markup>"] * math.ceil(TOOLS_MARKUP_SHARE * len(prompt_pieces(schemas)))
    for index, message in enumerate(messages):
        role = message.get("role")
        content = text_of(message.get("content"))
        if role == "system":
            text += content
        elif role == "user":
            text += _USER + content
        elif role == "tool":
            text += "\n\n" if index and messages[index - 1].get("role") == "tool" else _USER
            text += f"<tool_result>{content}</tool_result>"
        elif role == "assistant":
            if keep_reasoning:
                text += str(message.get("reasoning_content") or "") + _THINK_END
            text += content
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                text += str(function.get("name") or "") + str(function.get("arguments") or "")
                extra += ["<call-markup>"] * TOOL_CALL_MARKUP
            if not (request.prefix and index == len(messages) - 1):
                text += _EOS
        following = messages[index + 1].get("role") if index + 1 < len(messages) else None
        if role in ("user", "tool") and following in (None, "assistant"):
            text += _ASSISTANT + (_THINK if request.thinking and index >= last_user else _THINK_END)
    # The fixed additions go last, so two prompts share cached blocks only when their own text does.
    return prompt_pieces(text) + extra + _image_tokens(request)


def _image_tokens(request: ChatRequest) -> list[str]:
    """Each image as :data:`~.images.IMAGE_TOKENS` tokens named after its bytes (so the cache sees it)."""
    out: list[str] = []
    for message in request.messages:
        for image in seen_images(message):
            out += [f"<image {image.digest}>"] * IMAGE_TOKENS
    return out


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
