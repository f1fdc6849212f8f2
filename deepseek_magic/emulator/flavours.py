"""How the resellers' answers differ from DeepSeek's own, selected by path.

``/anyfast/v1/...`` and ``/evolink/v1/...`` serve the same replies as the
plain routes, reshaped the way each reseller documents them (shared/reference/
providers.md §2-3), so every provider is tested through real HTTP:

- Anyfast documents only the OpenAI-style ``prompt_tokens_details.cached_tokens``
  (no ``prompt_cache_hit_tokens``/``miss``) and a ``matched_stop`` on each choice.
- Evolink keeps DeepSeek's usage fields and bare-UUID ids, with its own
  ``system_fingerprint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EVOLINK_FINGERPRINT = "fp_evolink_v4_20260402"


@dataclass(frozen=True)
class Flavour:
    """One reseller's reshaping of DeepSeek answers."""

    name: str
    prefix: str
    openai_usage_only: bool = False
    matched_stop: bool = False
    fingerprint: str | None = None

    def usage(self, usage: dict[str, Any]) -> dict[str, Any]:
        if not self.openai_usage_only:
            return usage
        return {k: v for k, v in usage.items() if k not in ("prompt_cache_hit_tokens", "prompt_cache_miss_tokens")}

    def chunk(self, chunk: dict[str, Any], stops: dict[int, str | None]) -> dict[str, Any]:
        if self.fingerprint:
            chunk["system_fingerprint"] = self.fingerprint
        for choice in chunk.get("choices") or ():
            if self.matched_stop and choice.get("finish_reason"):
                choice["matched_stop"] = stops.get(choice["index"])
        if chunk.get("usage"):
            chunk["usage"] = self.usage(chunk["usage"])
        return chunk


DEEPSEEK = Flavour("deepseek", "")
FLAVOURS = (
    Flavour("anyfast", "/anyfast", openai_usage_only=True, matched_stop=True),
    Flavour("evolink", "/evolink", fingerprint=EVOLINK_FINGERPRINT),
)


def flavour_for(path: str) -> Flavour:
    """The reseller a request path belongs to (DeepSeek itself by default)."""
    for flavour in FLAVOURS:
        if path.startswith(flavour.prefix + "/"):
            return flavour
    return DEEPSEEK


def reseller_paths(path: str) -> list[str]:
    """``path`` under each reseller's ``/NAME/v1`` prefix."""
    return [f"{flavour.prefix}/v1{path}" for flavour in FLAVOURS]
