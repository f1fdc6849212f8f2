"""The provider table shown by ``%deepseek help`` and written in the README, built from the registry.

One function renders it so the README can be checked against the registry by a test: a provider added, or a
model's capabilities changed, shows up everywhere or the test says where the README is stale.
"""

from __future__ import annotations

from deepseek_magic.providers import providers
from deepseek_magic.providers.base import ModelInfo

HEADERS = ("provider", "name", "key variable", "base-URL variable", "models")


def describe_model(model: ModelInfo) -> str:
    """``deepseek-flash`` (thinking, images, 1M context, 384K out, 2,500 concurrent; also: …)."""
    traits = ["thinking" if model.thinking else "no thinking"]
    if model.vision:
        traits.append("images")
    traits.append(f"{_short(model.context_window)} context")
    traits.append(f"{_short(model.max_output)} out")
    if model.concurrency:
        traits.append(f"{model.concurrency:,} concurrent")
    if model.aliases:
        traits.append("also " + ", ".join(f"`{alias}`" for alias in model.aliases))
    return f"`{model.name}` ({'; '.join(traits)})"


def rows() -> list[tuple[str, str, str, str, str]]:
    """One row per registered provider, in registry order."""
    return [
        (
            provider.display_name,
            f"`{provider.name}`",
            f"`{provider.key_variable}`",
            f"`{provider.base_url_variable}`",
            "<br>".join(describe_model(model) for model in provider.models),
        )
        for provider in providers()
    ]


def markdown_table() -> str:
    """The Markdown table (the README holds exactly this between its provider-table markers)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows()]
    return "\n".join(lines)


def plain_text() -> str:
    """The same facts as plain lines, for ``%deepseek help`` in a terminal."""
    out = []
    for provider in providers():
        models = ", ".join(model.name for model in provider.models)
        out.append(f"  {provider.name:<10} {provider.key_variable:<18} {provider.base_url_variable:<19} {models}")
    return "\n".join(out)


def _short(count: int) -> str:
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000:
        return f"{count // 1000}K"
    return str(count)
