"""The protocol seam: what every provider module supplies, and nothing more.

A provider turns a :class:`ChatRequest` into an :class:`HttpCall` (URL, body,
headers; no I/O) and turns what comes back into normalized events. The client
does all the I/O and never looks inside a body, so a new provider is one module
implementing :class:`Provider`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from deepseek_magic.core.events import Event

if TYPE_CHECKING:  # annotations only: the settings layer sits above the providers
    from deepseek_magic.config.settings import Settings


@dataclass
class ChatRequest:
    """One chat completion to make: the conversation plus the settings in force."""

    messages: list[dict[str, Any]]
    settings: Settings
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    #: The HTTP call a provider built for this request, remembered by :meth:`call_for`.
    _call: tuple[object, HttpCall] | None = field(default=None, init=False, compare=False, repr=False)

    def call_for(self, provider: Provider) -> HttpCall:
        """``provider.prepare(self)``, built once: a batch row needs it for its cache key and again to send it."""
        remembered = self._call
        if remembered is not None and remembered[0] is provider:
            return remembered[1]
        call = provider.prepare(self)
        self._call = (provider, call)
        return call

    @property
    def stream(self) -> bool:
        return self.settings.stream

    @property
    def wants_prefix_completion(self) -> bool:
        """True when the last message is an assistant prefix to continue."""
        last = self.messages[-1] if self.messages else {}
        return last.get("role") == "assistant" and bool(last.get("prefix"))

    @property
    def wants_strict_tools(self) -> bool:
        return any(bool((tool.get("function") or {}).get("strict")) for tool in self.tools or ())


@dataclass(frozen=True)
class HttpCall:
    """A fully built HTTP request, minus the credentials.

    ``urls`` holds the primary URL first, then fallbacks that the client tries
    only when the previous one could not be reached (nothing was sent there).
    """

    method: str
    urls: tuple[str, ...]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False

    @property
    def url(self) -> str:
        return self.urls[0]


@dataclass(frozen=True)
class ModelInfo:
    """One model a provider serves, with what it can do.

    The numbers are the provider's documented ones, kept as data beside the
    provider so that a plugin states its own (and the README table, the form's
    model list and ``%deepseek help`` read them from one place).
    """

    name: str
    thinking: bool = True
    vision: bool = False
    context_window: int = 1_000_000
    max_output: int = 384_000
    #: Requests an account may have in flight at once (``None``: not documented).
    concurrency: int | None = None
    #: Other names the provider accepts for this model (legacy names included).
    aliases: tuple[str, ...] = ()


def find_model(models: tuple[ModelInfo, ...], name: str) -> ModelInfo | None:
    """The entry of ``models`` called ``name`` or having it as an alias; ``None`` when none does."""
    return next((model for model in models if name == model.name or name in model.aliases), None)


def as_models(models: Any) -> tuple[ModelInfo, ...]:
    """Model names or :class:`ModelInfo` objects, as a tuple of ModelInfo."""
    return tuple(model if isinstance(model, ModelInfo) else ModelInfo(str(model)) for model in models)


class StreamParser(Protocol):
    """Turns one stream's SSE ``data`` payloads into events, in order."""

    #: True once the provider's end-of-stream marker was seen.
    done: bool
    #: Payloads that could not be decoded and were skipped.
    malformed: int

    def feed(self, data: str) -> list[Event]: ...


class Provider(Protocol):
    """What the client needs from a provider module."""

    name: str
    display_name: str
    #: The environment variable holding this provider's key: a key is sent to this provider alone.
    key_variable: str
    #: The environment variable overriding this provider's base URL (for this provider and its key alone).
    base_url_variable: str
    #: The models it serves; the first is the default.
    models: tuple[ModelInfo, ...]
    #: Inclusive ranges that are stricter than the general ones in :mod:`deepseek_magic.core.limits`, by field.
    option_limits: Mapping[str, tuple[float, float]]

    def prepare(self, request: ChatRequest) -> HttpCall: ...

    def stream_parser(self) -> StreamParser: ...

    def parse_body(self, body: Any) -> list[Event]: ...

    def auth_headers(self, api_key: str) -> dict[str, str]: ...

    def models_call(self, settings: Settings) -> HttpCall | None: ...

    def balance_call(self, settings: Settings) -> HttpCall | None: ...

    def parse_models(self, body: Any) -> list[str]: ...


def bearer(api_key: str) -> dict[str, str]:
    """The ``Authorization`` header every supported provider uses."""
    return {"Authorization": f"Bearer {api_key}"}
