"""DeepSeek's OpenAI-compatible chat protocol, shared by the providers that speak it.

One profile class serves DeepSeek itself, Anyfast, Evolink and any custom base
URL; each provider module (``deepseek.py``, ``anyfast.py``, ``evolink.py``)
is just a profile: base URLs, where ``reasoning_effort`` goes, the name of the
user field. Differences are data, not code paths. Facts and sources:
shared/reference/deepseek-protocol.md and providers.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deepseek_magic.core import limits
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.events import (
    ContentDelta,
    Error,
    Event,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    ResponseMeta,
    ToolCallDelta,
    Usage,
)
from deepseek_magic.providers.base import ChatRequest, HttpCall, ModelInfo, as_models, bearer

if TYPE_CHECKING:  # annotations only: the settings layer sits above the providers
    from deepseek_magic.config.settings import Settings

#: DeepSeek's documented effort mapping (V4-Sep+ thinking_mode guide):
#: medium is served as high. Resellers that take all four get them unchanged.
DEEPSEEK_EFFORT = {"low": "low", "medium": "high", "high": "high", "max": "max"}

_OPTIONAL_NUMBERS = ("temperature", "top_p", "max_tokens", "seed", "top_logprobs", "n")


#: Body fields that change how a reply is delivered, never what it says.
_DELIVERY_FIELDS = ("stream", "stream_options")


@dataclass(frozen=True)
class OpenAICompatProvider:
    """A provider speaking ``POST {base}/chat/completions`` with SSE streaming."""

    name: str
    display_name: str
    base_urls: tuple[str, ...]
    key_variable: str = ""
    base_url_variable: str = ""
    models: tuple[ModelInfo, ...] = ()
    option_limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    beta_base_url: str | None = None
    effort_inside_thinking: bool = False
    effort_map: dict[str, str] | None = None
    user_field: str = "user_id"
    has_balance: bool = False

    # ------------------------------------------------------------------ requests

    def prepare(self, request: ChatRequest) -> HttpCall:
        """Validate and build the HTTP call; raises :class:`ConfigError` before sending."""
        settings = request.settings
        body = self.build_body(request)
        needs_beta = request.wants_prefix_completion or request.wants_strict_tools
        urls = self._chat_urls(settings, beta=needs_beta)
        headers = {"Accept": "text/event-stream" if request.stream else "application/json"}
        headers.update(settings.extra_headers)
        return HttpCall("POST", urls, body=body, headers=headers, stream=request.stream)

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body, exactly as it will be sent."""
        settings = request.settings
        if not request.messages:
            raise ConfigError("there is no message to send")
        problem = option_limit_problem(self, settings)
        if problem:
            raise ConfigError(problem)
        thinking_on = settings.thinking is not False
        body: dict[str, Any] = {"model": settings.model, "messages": self._messages(request)}
        if settings.thinking is not None:
            body["thinking"] = {"type": "enabled" if settings.thinking else "disabled"}
        if settings.effort and thinking_on:
            effort = (self.effort_map or {}).get(settings.effort, settings.effort)
            if self.effort_inside_thinking:
                body.setdefault("thinking", {"type": "enabled"})["reasoning_effort"] = effort
            else:
                body["reasoning_effort"] = effort
        for name in _OPTIONAL_NUMBERS:
            value = getattr(settings, name)
            if value is not None:
                body[name] = value
        if settings.stop:
            body["stop"] = list(settings.stop)
        if settings.logprobs is not None:
            body["logprobs"] = settings.logprobs
        if settings.logit_bias:
            body["logit_bias"] = dict(settings.logit_bias)
        if settings.user_id:
            body[self.user_field] = settings.user_id
        if settings.json_mode:
            body["response_format"] = {"type": "json_object"}
        if request.tools:
            problem = limits.tools_problem(request.tools)
            if problem:
                raise ConfigError(problem)
            body["tools"] = request.tools
            if request.tool_choice is not None:
                self._check_tool_choice(request.tool_choice, thinking_on)
                body["tool_choice"] = request.tool_choice
        elif request.tool_choice not in (None, "none", "auto"):
            raise ConfigError("tool_choice names a tool but no tools were given")
        if request.wants_prefix_completion and self.beta_base_url is None:
            raise ConfigError(f"prefix completion is a DeepSeek beta feature; {self.display_name} lacks it")
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def _check_tool_choice(choice: str | dict[str, Any], thinking_on: bool) -> None:
        if thinking_on and choice not in limits.THINKING_TOOL_CHOICES:
            raise ConfigError(
                "in thinking mode tool_choice may only be 'auto' or 'none'; "
                "turn thinking off (--no-think) to force a tool"
            )

    @staticmethod
    def _messages(request: ChatRequest) -> list[dict[str, Any]]:
        """Messages as DeepSeek accepts them.

        ``developer`` is not a role DeepSeek knows (it answers 400), so it is
        sent as ``system``. With tools in the request every assistant turn must
        carry ``reasoning_content``; ``""`` is accepted where there was none.
        """
        with_tools = bool(request.tools)
        out: list[dict[str, Any]] = []
        for message in request.messages:
            role = message.get("role")
            if role == "developer":
                message = {**message, "role": "system"}
            elif with_tools and role == "assistant" and message.get("reasoning_content") is None:
                message = {**message, "reasoning_content": ""}
            out.append(message)
        return out

    def _chat_urls(self, settings: Settings, *, beta: bool) -> tuple[str, ...]:
        bases = self._bases(settings, beta=beta)
        return tuple(f"{base}/chat/completions" for base in bases)

    def _bases(self, settings: Settings, *, beta: bool = False) -> tuple[str, ...]:
        if settings.base_url:
            base = settings.base_url.rstrip("/")
            if beta:
                base = base.removesuffix("/v1").removesuffix("/beta") + "/beta"
            return (base,)
        if beta and self.beta_base_url:
            return (self.beta_base_url,)
        return self.base_urls

    def cache_body(self, body: Any) -> Any:
        """The body without the fields that only choose streaming (the reply-cache key ignores them)."""
        if not isinstance(body, dict):
            return body
        return {name: value for name, value in body.items() if name not in _DELIVERY_FIELDS}

    # ------------------------------------------------------------------ account

    def models_call(self, settings: Settings) -> HttpCall | None:
        return HttpCall("GET", tuple(f"{b}/models" for b in self._bases(settings)), headers=_json_accept())

    def balance_call(self, settings: Settings) -> HttpCall | None:
        if not self.has_balance and not settings.base_url:
            return None
        bases = tuple(b.removesuffix("/v1") for b in self._bases(settings))
        return HttpCall("GET", tuple(f"{b}/user/balance" for b in bases), headers=_json_accept())

    def parse_models(self, body: Any) -> list[str]:
        data = body.get("data") if isinstance(body, dict) else None
        return [str(item["id"]) for item in data or () if isinstance(item, dict) and "id" in item]

    # ------------------------------------------------------------------ responses

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return bearer(api_key)

    def stream_parser(self) -> ChunkParser:
        return ChunkParser()

    def parse_body(self, body: Any) -> list[Event]:
        """Events equivalent to a whole non-stream ``chat.completion`` body (an Error event if malformed)."""
        try:
            return self._body_events(body)
        except (AttributeError, TypeError, ValueError, OverflowError):
            return [Error("the server sent a reply in an unexpected shape")]

    def _body_events(self, body: Any) -> list[Event]:
        if not isinstance(body, dict):
            return [Error("the server sent a body that is not a JSON object")]
        if "error" in body and "choices" not in body:
            error = body["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            return [Error(str(message))]
        events: list[Event] = [_meta(body)]
        for choice in body.get("choices") or ():
            index = int(choice.get("index") or 0)
            message = choice.get("message") or {}
            if message.get("reasoning_content"):
                events.append(ReasoningDelta(_text(message["reasoning_content"]), index))
            if message.get("content"):
                events.append(ContentDelta(_text(message["content"]), index))
            for position, call in enumerate(message.get("tool_calls") or ()):
                function = call.get("function") or {}
                events.append(
                    ToolCallDelta(
                        index=int(call.get("index", position)),
                        id=call.get("id"),
                        name=function.get("name"),
                        arguments=function.get("arguments") or "",
                        choice=index,
                    )
                )
            logprobs = choice.get("logprobs")
            if logprobs:
                events.append(_logprobs(logprobs, index))
            events.append(Finish(choice.get("finish_reason"), choice.get("matched_stop"), index))
        if body.get("usage"):
            events.append(Usage.from_wire(body["usage"]))
        return events


def option_limit_problem(provider: Any, settings: Settings) -> str | None:
    """Why a setting is outside ``provider.option_limits`` (stricter than the general limits), or ``None``."""
    for name, (low, high) in getattr(provider, "option_limits", {}).items():
        value = getattr(settings, name, None)
        if value is not None and not low <= value <= high:
            return f"{name} must be between {low:g} and {high:g} with {provider.display_name}, got {value!r}"
    return None


def OpenAICompatible(  # a factory named like the class it stands for: the public plugin helper
    *,
    name: str,
    base_url: str,
    key_variable: str,
    models: Iterable[str | ModelInfo],
    base_url_variable: str | None = None,
    display_name: str | None = None,
    option_limits: Mapping[str, tuple[float, float]] | None = None,
) -> OpenAICompatProvider:
    """A provider for any OpenAI-compatible ``/chat/completions`` endpoint: the common plugin case.

    ``base_url_variable`` defaults to ``{NAME}_BASE_URL``. Register the result
    in the ``deepseek_magic.providers`` entry-point group (see the README).
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
        raise ConfigError(f"provider name {name!r}: use lowercase letters, digits, '-' or '_'")
    if not key_variable:
        raise ConfigError(f"provider {name!r} needs a key_variable (the environment variable holding its key)")
    infos = as_models(models)
    if not infos:
        raise ConfigError(f"provider {name!r} needs at least one model")
    return OpenAICompatProvider(
        name=name,
        display_name=display_name or name,
        base_urls=(base_url.rstrip("/"),),
        key_variable=key_variable,
        base_url_variable=base_url_variable or f"{name.upper().replace('-', '_')}_BASE_URL",
        models=infos,
        option_limits=dict(option_limits or {}),
    )


class ChunkParser:
    """Decodes ``chat.completion.chunk`` payloads, one SSE ``data`` at a time."""

    __slots__ = ("_meta_sent", "done", "malformed")

    def __init__(self) -> None:
        self.done = False
        self.malformed = 0
        self._meta_sent = False

    def feed(self, data: str) -> list[Event]:
        if data == "[DONE]":
            self.done = True
            return []
        try:
            chunk = _decode(data)
        except (ValueError, RecursionError):  # broken, or nested too deeply to parse: skipped and counted
            self.malformed += 1
            return []
        if type(chunk) is not dict:
            self.malformed += 1
            return []
        try:
            return self._events(chunk)
        except (AttributeError, TypeError, ValueError, OverflowError):
            # Valid JSON in the wrong shape ({"choices": [1]}, a string usage...): skipped, counted, never raised.
            self.malformed += 1
            return []

    def _events(self, chunk: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if not self._meta_sent and ("id" in chunk or "model" in chunk):
            events.append(_meta(chunk))
            self._meta_sent = True
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                index = _index(choice.get("index"))
                delta = choice.get("delta")
                if delta:
                    reasoning = delta.get("reasoning_content")
                    if reasoning:
                        events.append(ReasoningDelta(_text(reasoning), index))
                    content = delta.get("content")
                    if content:
                        events.append(ContentDelta(_text(content), index))
                    if "tool_calls" in delta:
                        events.extend(_tool_deltas(delta["tool_calls"], index))
                if choice.get("logprobs"):
                    logprobs = _logprobs(choice["logprobs"], index)
                    if logprobs.content or logprobs.reasoning:
                        events.append(logprobs)
                reason = choice.get("finish_reason")
                if reason:
                    events.append(Finish(_text(reason), _matched(choice.get("matched_stop")), index))
        if chunk.get("usage"):
            events.append(Usage.from_wire(chunk["usage"]))
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            events.append(Error(str(message), None if code is None else str(code)))
        return events


_decode = json.JSONDecoder().decode


def _index(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int:
        raise TypeError("an index must be an integer")
    return value


def _matched(value: Any) -> str | int | None:
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError("text fields must be strings")
    return value


def _tool_deltas(calls: Any, choice: int) -> list[Event]:
    out: list[Event] = []
    for call in calls or ():
        function = call.get("function") or {}
        out.append(
            ToolCallDelta(
                index=_index(call.get("index")),
                id=_optional_text(call.get("id") or None),
                name=_optional_text(function.get("name") or None),
                arguments=_text(function.get("arguments") or ""),
                choice=choice,
            )
        )
    return out


def _meta(obj: dict[str, Any]) -> ResponseMeta:
    created = obj.get("created")
    return ResponseMeta(
        id=_optional_text(obj.get("id")),
        model=_optional_text(obj.get("model")),
        system_fingerprint=_optional_text(obj.get("system_fingerprint")),
        created=int(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
    )


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _logprobs(raw: dict[str, Any], choice: int) -> LogprobsDelta:
    content = tuple(raw.get("content") or ())
    reasoning = tuple(raw.get("reasoning_content") or ())
    if not all(isinstance(entry, dict) for entry in content + reasoning):
        raise TypeError("log-probability entries must be objects")
    return LogprobsDelta(content=content, reasoning=reasoning, choice=choice)


def _json_accept() -> dict[str, str]:
    return {"Accept": "application/json"}
