"""The one cost estimator: an upper bound on what requests may cost, before they are sent.

Why one: the session's budget (``Session(max_cost=...)``) and the batch's cost
preview (``confirm_above``) used to guess the output differently (8,192 vs
1,024 tokens when ``max_tokens`` is unset), so the same request could pass one
check and fail the other. Both now call :func:`estimate_cost`.

Assumptions, all on the side of paying more than real:

* every prompt token is a cache miss;
* prompt tokens are counted by the ``count`` the caller passes: the session
  and the batch pass the exact V4 counter (:mod:`deepseek_magic.features.tokens`, one
  layer up); the default here, also that counter's fallback when the
  tokenizer is not installed, is about 3 characters per token of the JSON;
* each answer uses its whole ``max_tokens``, or :data:`DEFAULT_OUTPUT_TOKENS`
  when it is unset (DeepSeek's own default output length for the chat models).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from deepseek_magic.config.settings import Settings
from deepseek_magic.core.pricing import PriceTable

#: Output tokens assumed per answer when ``max_tokens`` is unset.
DEFAULT_OUTPUT_TOKENS = 8192
#: Characters of the messages' JSON counted as one prompt token.
CHARS_PER_TOKEN = 3


def prompt_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """An over-estimate of the prompt tokens of ``messages``."""
    return len(json.dumps(messages, ensure_ascii=False)) // CHARS_PER_TOKEN + 1


def output_tokens(settings: Settings) -> int:
    """The output tokens one answer may use under ``settings``."""
    return settings.max_tokens or DEFAULT_OUTPUT_TOKENS


PromptCounter = Callable[[Sequence[dict[str, Any]]], int]


def estimate_cost(
    prices: PriceTable,
    settings: Settings,
    prompts: Iterable[Sequence[dict[str, Any]]],
    *,
    count: PromptCounter = prompt_tokens,
) -> float | None:
    """Upper cost in USD of sending each message list in ``prompts`` once; ``None`` without a price."""
    requests = 0
    tokens = 0
    for messages in prompts:
        requests += 1
        tokens += count(messages)
    if not requests:
        return 0.0
    return prices.estimate(settings.provider, settings.model, tokens, output_tokens(settings) * requests)


__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_OUTPUT_TOKENS",
    "PromptCounter",
    "estimate_cost",
    "output_tokens",
    "prompt_tokens",
]
