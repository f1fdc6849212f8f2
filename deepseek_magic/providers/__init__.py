"""Provider registry: a name to a :class:`~deepseek_magic.providers.base.Provider`.

Built-in providers are looked up lazily by module path so that importing the
package stays cheap; third-party providers can register through the
``deepseek_magic.providers`` entry-point group (an object with the Provider
attributes), the way simonw/llm takes plugins.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import cast

from ..errors import ConfigError
from .base import ChatRequest, HttpCall, Provider, StreamParser

__all__ = ["ChatRequest", "HttpCall", "Provider", "StreamParser", "get_provider", "provider_names"]

_BUILTIN: dict[str, str] = {
    "deepseek": "deepseek_magic.providers.deepseek:DEEPSEEK",
    "anyfast": "deepseek_magic.providers.anyfast:ANYFAST",
    "evolink": "deepseek_magic.providers.evolink:EVOLINK",
    "runware": "deepseek_magic.providers.runware:RUNWARE",
}

_cache: dict[str, Provider] = {}


def provider_names() -> list[str]:
    """Every provider that can be selected, built-in first."""
    names = list(_BUILTIN)
    names += [ep.name for ep in entry_points(group="deepseek_magic.providers") if ep.name not in names]
    return names


def get_provider(name: str) -> Provider:
    """The provider called ``name``; a :class:`ConfigError` naming the choices otherwise."""
    provider = _cache.get(name)
    if provider is not None:
        return provider
    target = _BUILTIN.get(name)
    if target is not None:
        module_name, _, attribute = target.partition(":")
        provider = cast(Provider, getattr(import_module(module_name), attribute))
    else:
        for ep in entry_points(group="deepseek_magic.providers"):
            if ep.name == name:
                provider = cast(Provider, ep.load())
                break
    if provider is None:
        raise ConfigError(f"unknown provider {name!r}; choose one of: {', '.join(provider_names())}")
    _cache[name] = provider
    return provider
