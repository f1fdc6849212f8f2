"""Provider registry: a name to a :class:`~deepseek_magic.providers.base.Provider`.

Every provider, built-in or not, comes from the ``deepseek_magic.providers``
entry-point group (the built-ins are declared in this package's
``pyproject.toml`` like any plugin). A checkout that was never installed has
no entry points, so the built-ins are also listed here as a fallback; an entry
point of the same name wins. An entry point names either a provider object or
a callable returning one. :func:`register` adds one from code (a notebook, a
test) without packaging it.

Everything that lists providers (``--provider`` choices, the settings form,
``%deepseek help``, the README table) asks :func:`provider_names` /
:func:`providers`, so there is one list.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from deepseek_magic.core.errors import ConfigError
from deepseek_magic.providers.base import ChatRequest, HttpCall, ModelInfo, Provider, StreamParser
from deepseek_magic.providers.openai_compat import OpenAICompatible

__all__ = [
    "GROUP",
    "ChatRequest",
    "HttpCall",
    "ModelInfo",
    "OpenAICompatible",
    "Provider",
    "StreamParser",
    "get_provider",
    "provider_names",
    "providers",
    "refresh",
    "register",
]

GROUP = "deepseek_magic.providers"

#: Fallback for a checkout run without installing (no entry points); same targets as pyproject.toml declares.
_BUILTIN: dict[str, str] = {
    "deepseek": "deepseek_magic.providers.deepseek:DEEPSEEK",
    "anyfast": "deepseek_magic.providers.anyfast:ANYFAST",
    "evolink": "deepseek_magic.providers.evolink:EVOLINK",
    "runware": "deepseek_magic.providers.runware:RUNWARE",
}

_cache: dict[str, Provider] = {}
_registered: dict[str, Provider] = {}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    # Scanning installed distributions takes milliseconds and Settings validate the provider on every change:
    # read once per process (refresh() after installing a plugin into a running kernel).
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def refresh() -> None:
    """Forget what was read from the entry points (a plugin was installed into the running process)."""
    _entry_points.cache_clear()
    _cache.clear()


def provider_names() -> list[str]:
    """Every provider that can be selected: the built-ins first, then plugins in name order."""
    found = set(_entry_points()) | set(_registered)
    return [*_BUILTIN, *sorted(found - set(_BUILTIN))]


def providers() -> list[Provider]:
    """Every provider object, in :func:`provider_names` order (a broken plugin is skipped, not fatal)."""
    out = []
    for name in provider_names():
        try:
            out.append(get_provider(name))
        except ConfigError:
            continue
    return out


def register(provider: Provider) -> Provider:
    """Make ``provider`` selectable by its name in this process (what an entry point does for a package)."""
    _check(provider, provider.name)
    _registered[provider.name] = provider
    _cache.pop(provider.name, None)
    return provider


def get_provider(name: str) -> Provider:
    """The provider called ``name``; a :class:`ConfigError` naming the choices otherwise."""
    provider = _cache.get(name) or _registered.get(name)
    if provider is not None:
        return provider
    entry = _entry_points().get(name)
    if entry is not None:
        provider = _load(name, entry.load)
    elif name in _BUILTIN:
        module_name, _, attribute = _BUILTIN[name].partition(":")
        provider = _load(name, lambda: getattr(import_module(module_name), attribute))
    else:
        raise ConfigError(f"unknown provider {name!r}; choose one of: {', '.join(provider_names())}")
    _cache[name] = provider
    return provider


def _load(name: str, loader: Any) -> Provider:
    try:
        target = loader()
        provider = target if hasattr(target, "prepare") else target()
    except Exception as exc:  # a plugin's import error: one line naming it, never a traceback into a cell
        raise ConfigError(f"provider {name!r} could not be loaded: {type(exc).__name__}: {exc}") from None
    return _check(cast(Provider, provider), name)


def _check(provider: Provider, name: str) -> Provider:
    missing = [
        attribute
        for attribute in ("name", "display_name", "key_variable", "base_url_variable", "models", "prepare")
        if not getattr(provider, attribute, None)
    ]
    if missing:
        raise ConfigError(f"provider {name!r} lacks {', '.join(missing)}")
    if provider.name != name:
        raise ConfigError(f"provider registered as {name!r} calls itself {provider.name!r}")
    return provider
