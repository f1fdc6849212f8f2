"""Runware's native task API (``textInference``) for DeepSeek V4.

Facts and sources: shared/reference/providers.md §1. Runware also offers an
OpenAI-compatible endpoint, but only the native API reports a per-task USD
``cost``, echoes our ``taskUUID`` and offers async delivery, so this module
speaks it. Choices made where the reference is silent or unconfirmed:

Endpoint
    ``POST https://api.runware.ai/v1`` with a JSON array holding one task. A
    ``base_url`` override names the same API root: requests go to
    ``{base_url}`` when it already ends in ``/v1`` and to ``{base_url}/v1``
    otherwise. So ``https://api.runware.ai/v1`` works as is, and a local
    emulator root (``http://127.0.0.1:8000``) reaches its ``POST /v1`` route.

Models
    The friendly names ``deepseek-v4-pro`` / ``deepseek-v4-flash`` become the
    AIR ids ``deepseek:v4@pro`` / ``deepseek:v4@flash`` (both official SDKs do
    this: "the server only knows the AIR form"); any other id is sent as is.

Thinking
    ``thinking=False`` sends ``thinkingLevel: "none"``. Effort maps the way
    DeepSeek itself serves it (only high and max exist upstream):
    low/medium/high -> ``"high"``, max -> ``"max"``; ``thinking=True`` without
    an effort sends ``"high"``. With neither set the field is left out, which
    keeps Runware's own default (off for DeepSeek, unlike DeepSeek's API). The
    three-value enum is unconfirmed (providers.md §1.7); this is the best guess.

Delivery
    ``settings.async_delivery`` picks ``async`` (submit, then poll
    ``getResponse``; ``--async-delivery`` in a cell); otherwise
    ``settings.stream`` picks ``stream`` (SSE) or ``sync``. A provider object
    made with ``dataclasses.replace(RUNWARE, delivery=...)`` can pin one. The
    client polls through :meth:`RunwareProvider.poll_call` / :meth:`poll_result`.

Tool calls in replies
    No source shows how a native result carries model-issued tool calls
    (NOT FOUND in providers.md §1.5). Assumed: the same ``tools:
    [{id, name, input}]`` list that an assistant message carries in request
    history, on the result item (sync/async) or in ``delta.tools`` (stream),
    with ``finishReason`` ``tool_calls`` (``tool_use`` is read as the same).

Not mapped
    Settings has no penalty fields yet, so ``presencePenalty`` /
    ``frequencyPenalty`` are never sent. ``user_id`` has no Runware field and
    is ignored; logprobs and logit_bias do not exist there and are refused.
    JSON mode sends ``outputFormat: "JSON"`` for ``deepseek:v4@flash`` only
    (the generated type for ``@pro`` lists just ``TEXT``); the JSON
    instruction in the prompt does the work for other models.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from deepseek_magic.core import limits
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.events import (
    ContentDelta,
    Error,
    Event,
    Finish,
    ReasoningDelta,
    ResponseMeta,
    ToolCallDelta,
    Usage,
)
from deepseek_magic.providers.base import ChatRequest, HttpCall, ModelInfo, bearer

if TYPE_CHECKING:  # annotations only: the settings layer sits above the providers
    from deepseek_magic.config.settings import Settings

RUNWARE_URL = "https://api.runware.ai/v1"
TASK_TYPE = "textInference"

#: Friendly model names -> Runware AIR ids.
MODEL_IDS: dict[str, str] = {"deepseek-v4-pro": "deepseek:v4@pro", "deepseek-v4-flash": "deepseek:v4@flash"}
#: Effort -> ``settings.thinkingLevel`` (DeepSeek serves low and medium as high).
THINKING_LEVELS: dict[str, str] = {"low": "high", "medium": "high", "high": "high", "max": "max"}
THINKING_OFF = "none"
#: Runware's documented limits for DeepSeek V4 (stricter than DeepSeek's own).
MAX_TOKENS = 100_000
MAX_STOP_SEQUENCES = 5
NUMBER_RESULTS = (1, 4)
#: Built-in tools Runware runs itself; passed through untouched.
BUILTIN_TOOLS = ("search", "codeInterpreter")
#: Common ``tool_choice`` strings -> Runware ``toolChoice.type``.
TOOL_CHOICES: dict[str, str] = {"auto": "auto", "none": "none", "required": "any"}
#: Models whose generated request type allows ``outputFormat: "JSON"``.
JSON_OUTPUT_MODELS = ("deepseek:v4@flash",)

Delivery = Literal["auto", "sync", "stream", "async"]
#: Result ``status`` values meaning the task is over (docs say success, the new SDK checks completed).
_FINISHED = ("success", "completed", "error", "failed")
_FINISH_REASONS = {"tool_use": "tool_calls"}


#: Task fields that change how a reply is delivered, never what it says (left out of the reply-cache key).
_TASK_DELIVERY_FIELDS = ("taskUUID", "deliveryMethod")


def model_id(model: str) -> str:
    """The AIR id Runware knows for ``model``; unknown ids pass through."""
    return MODEL_IDS.get(model, model)


def thinking_level(settings: Settings) -> str | None:
    """``settings.thinkingLevel`` for these settings, or ``None`` to leave Runware's default."""
    if settings.thinking is False:
        return THINKING_OFF
    if settings.effort:
        return THINKING_LEVELS[settings.effort]
    if settings.thinking:
        return THINKING_LEVELS["high"]
    return None


def task_url(settings: Settings) -> str:
    """The task endpoint: the default, or ``base_url`` with ``/v1`` appended unless it ends so."""
    if not settings.base_url:
        return RUNWARE_URL
    base = settings.base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


@dataclass(frozen=True)
class RunwareProvider:
    """Runware's task protocol; ``delivery="auto"`` follows ``settings.stream``."""

    name: str = "runware"
    display_name: str = "Runware"
    delivery: Delivery = "auto"
    key_variable: str = "RUNWARE_API_KEY"
    base_url_variable: str = "RUNWARE_BASE_URL"
    models: tuple[ModelInfo, ...] = (
        ModelInfo("deepseek-v4-flash", vision=True, max_output=MAX_TOKENS, aliases=(MODEL_IDS["deepseek-v4-flash"],)),
        ModelInfo("deepseek-v4-pro", max_output=MAX_TOKENS, aliases=(MODEL_IDS["deepseek-v4-pro"],)),
    )
    option_limits: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {"max_tokens": (1, MAX_TOKENS), "n": NUMBER_RESULTS}
    )

    # ------------------------------------------------------------------ requests

    def delivery_for(self, settings: Settings) -> str:
        """The ``deliveryMethod`` a request with ``settings`` uses."""
        if self.delivery != "auto":
            return self.delivery
        if settings.async_delivery:
            return "async"
        return "stream" if settings.stream else "sync"

    def prepare(self, request: ChatRequest) -> HttpCall:
        """Validate and build the call (a fresh ``taskUUID`` each time); raises before sending."""
        settings = request.settings
        task = self.build_task(request)
        streaming = task["deliveryMethod"] == "stream"
        headers = {"Accept": "text/event-stream" if streaming else "application/json"}
        headers.update(settings.extra_headers)
        return HttpCall("POST", (task_url(settings),), body=[task], headers=headers, stream=streaming)

    def build_task(self, request: ChatRequest, task_uuid: str | None = None) -> dict[str, Any]:
        """The ``textInference`` task, exactly as it will be sent (inside a one-element array)."""
        settings = request.settings
        _refuse_unsupported(settings)
        system, messages = _messages(request.messages)
        delivery = self.delivery_for(settings)
        model = model_id(settings.model)
        task: dict[str, Any] = {
            "taskType": TASK_TYPE,
            "taskUUID": task_uuid or str(uuid.uuid4()),
            "model": model,
            "deliveryMethod": delivery,
            "messages": messages,
        }
        options = _settings_object(settings, system)
        if options:
            task["settings"] = options
        if settings.n is not None:
            low, high = NUMBER_RESULTS
            if not low <= settings.n <= high:
                raise ConfigError(f"Runware takes numberResults (n) between {low} and {high}, got {settings.n}")
            if settings.n > 1 and delivery == "stream":
                raise ConfigError("Runware cannot stream more than one result; use --no-stream with n > 1")
            task["numberResults"] = settings.n
        if settings.seed is not None:
            task["seed"] = settings.seed
        if settings.json_mode and model in JSON_OUTPUT_MODELS:
            task["outputFormat"] = "JSON"
        level = options.get("thinkingLevel")
        thinking_on = level is not None and level != THINKING_OFF
        _add_tools(task, request, thinking_on)
        task["includeCost"] = True
        task["includeUsage"] = True
        return task

    # ------------------------------------------------------------------ account

    def models_call(self, settings: Settings) -> HttpCall | None:
        """None: the native API has no model list (the schema registry is a separate service)."""
        return None

    def balance_call(self, settings: Settings) -> HttpCall | None:
        return None

    def parse_models(self, body: Any) -> list[str]:
        return []

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return bearer(api_key)

    # ------------------------------------------------------------------ responses

    def stream_parser(self) -> TaskStreamParser:
        return TaskStreamParser()

    def parse_body(self, body: Any) -> list[Event]:
        """Events of a whole ``{"data": [...]}`` answer (sync delivery, or a finished poll)."""
        if not isinstance(body, dict):
            return [Error("Runware sent a body that is not a JSON object")]
        items = _result_items(body)
        events = _item_events(items)
        error = _errors_event(body.get("errors"))
        if error is not None:
            events.append(error)
        elif not items:
            events.append(Error("Runware's answer held no textInference result"))
        return events

    def cache_body(self, body: Any) -> Any:
        """The tasks without their delivery fields (a fresh ``taskUUID`` per call; stream/sync/async delivery)."""
        if not isinstance(body, list):
            return body
        return [
            {k: v for k, v in task.items() if k not in _TASK_DELIVERY_FIELDS} if isinstance(task, dict) else task
            for task in body
        ]

    def poll_call(self, call: HttpCall, body: Any) -> HttpCall | None:
        """The ``getResponse`` call to make when ``body`` only acknowledges an async task."""
        task = _first_task(call.body)
        if task is None or task.get("deliveryMethod") != "async" or not isinstance(body, dict):
            return None
        if body.get("errors") and not body.get("data"):
            return None  # parse_body reports it
        items = _result_items(body)
        if items and all(_finished(item) for item in items):
            return None  # the result came with the acknowledgement
        task_uuid = next((item.get("taskUUID") for item in items if item.get("taskUUID")), task.get("taskUUID"))
        poll = [{"taskType": "getResponse", "taskUUID": task_uuid}]
        return HttpCall("POST", call.urls[:1], body=poll, headers=dict(call.headers), stream=False)

    def poll_result(self, call: HttpCall, body: Any) -> list[Event] | None:
        """Events once the polled task is over; ``None`` while it is still processing."""
        if not isinstance(body, dict):
            return [Error("Runware sent a poll answer that is not a JSON object")]
        items = _result_items(body)
        if not items:
            return self.parse_body(body) if body.get("errors") else None
        task = _first_task(call.body) or {}
        expected = _index(task, "numberResults", 1)
        finished = [item for item in items if _finished(item)]
        failed = any(item.get("status") in ("error", "failed") for item in finished)
        if not failed and (len(finished) < len(items) or len(finished) < expected):
            return None
        return self.parse_body({**body, "data": finished})


# ---------------------------------------------------------------------- request helpers


def _refuse_unsupported(settings: Settings) -> None:
    if settings.logprobs:
        raise ConfigError("Runware's task API has no logprobs")
    if settings.top_logprobs is not None:
        raise ConfigError("Runware's task API has no top_logprobs")
    if settings.logit_bias:
        raise ConfigError("Runware's task API has no logit_bias")


def _settings_object(settings: Settings, system: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if system:
        options["systemPrompt"] = system
    if settings.max_tokens is not None:
        if settings.max_tokens > MAX_TOKENS:
            raise ConfigError(f"Runware takes max_tokens up to {MAX_TOKENS}, got {settings.max_tokens}")
        options["maxTokens"] = settings.max_tokens
    if settings.temperature is not None:
        options["temperature"] = settings.temperature
    if settings.top_p is not None:
        options["topP"] = settings.top_p
    if settings.stop:
        if len(settings.stop) > MAX_STOP_SEQUENCES:
            raise ConfigError(f"Runware takes at most {MAX_STOP_SEQUENCES} stop sequences, got {len(settings.stop)}")
        options["stopSequences"] = list(settings.stop)
    level = thinking_level(settings)
    if level is not None:
        options["thinkingLevel"] = level
    return options


def _text(content: Any, where: str) -> str:
    """Text of a message's content; Runware's DeepSeek task takes text only."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ConfigError(f"Runware: {where} has a non-text part; only text is supported")
            parts.append(str(part.get("text") or ""))
        return "\n".join(parts)
    raise ConfigError(f"Runware: {where} content must be text")


def _messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(systemPrompt, Runware messages) for an OpenAI-shaped conversation.

    System (and ``developer``) messages become ``settings.systemPrompt``;
    tool calls and tool results take Runware's native history format.
    """
    if not messages:
        raise ConfigError("there is no message to send")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        where = f"message {index} ({role})"
        if role in ("system", "developer"):
            system.append(_text(message.get("content"), where))
        elif role == "user":
            out.append({"role": "user", "content": _text(message.get("content"), where)})
        elif role == "assistant":
            out.append(_assistant(message, where))
        elif role == "tool":
            call_id = message.get("tool_call_id") or message.get("id")
            if not isinstance(call_id, str):
                raise ConfigError(f"Runware: {where} needs the tool_call_id it answers")
            out.append({"role": "tool", "id": call_id, "content": _text(message.get("content"), where)})
        else:
            raise ConfigError(f"Runware: {where} has a role Runware does not know")
    last = messages[-1].get("role")
    if not out or last != "user":
        raise ConfigError(f"Runware needs the last message to be a user message (the last one is {last!r})")
    return "\n\n".join(text for text in system if text), out


def _assistant(message: dict[str, Any], where: str) -> dict[str, Any]:
    """An assistant turn; ``reasoning_content`` is dropped (Runware has no field for it)."""
    content = _text(message.get("content"), where)
    out: dict[str, Any] = {"role": "assistant"}
    calls = message.get("tool_calls") or []
    if content or not calls:
        out["content"] = content
    if calls:
        out["tools"] = [_history_call(call) for call in calls]
    return out


def _history_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        value: Any = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        value = arguments  # what the model wrote, unchanged; the server decides
    return {"id": call.get("id"), "name": function.get("name"), "input": value}


def _add_tools(task: dict[str, Any], request: ChatRequest, thinking_on: bool) -> None:
    tools = request.tools or []
    choice = request.tool_choice
    if not tools:
        if choice not in (None, "none", "auto"):
            raise ConfigError("tool_choice names a tool but no tools were given")
        return
    functions = [tool for tool in tools if tool.get("type", "function") == "function"]
    problem = limits.tools_problem(functions)
    if problem:
        raise ConfigError(problem)
    out: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type", "function")
        if kind in BUILTIN_TOOLS:
            out.append(dict(tool))
        elif kind == "function":
            function = tool["function"]
            entry: dict[str, Any] = {"type": "function", "name": function["name"]}
            if function.get("description"):
                entry["description"] = function["description"]
            entry["schema"] = function.get("parameters") or {"type": "object", "properties": {}}
            out.append(entry)
        else:
            builtins = ", ".join(BUILTIN_TOOLS)
            raise ConfigError(f"Runware: unknown tool type {kind!r}; use function tools or one of {builtins}")
    task["tools"] = out
    if choice is not None:
        names = [str(tool["function"]["name"]) for tool in functions]
        task["toolChoice"] = _tool_choice(choice, names, thinking_on)


def _tool_choice(choice: str | dict[str, Any], names: list[str], thinking_on: bool) -> dict[str, Any]:
    """The common ``tool_choice`` as Runware's ``toolChoice`` (auto | any | tool+name | none)."""
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise ConfigError(f"tool_choice must be auto, none, required or a named function, got {choice!r}")
        result: dict[str, Any] = {"type": TOOL_CHOICES[choice]}
    elif isinstance(choice.get("function"), dict):
        result = {"type": "tool", "name": choice["function"].get("name")}
    elif choice.get("type") in ("auto", "any", "tool", "none"):
        result = {key: choice[key] for key in ("type", "name") if key in choice}
    else:
        raise ConfigError("tool_choice must be auto, none, required or {'function': {'name': ...}}")
    if result["type"] == "tool" and result.get("name") not in names:
        raise ConfigError(f"tool_choice names {result.get('name')!r}, which is not among the tools given")
    if thinking_on and result["type"] not in limits.THINKING_TOOL_CHOICES:
        raise ConfigError(
            "in thinking mode tool_choice may only be 'auto' or 'none'; turn thinking off (--no-think) to force a tool"
        )
    return result


def _first_task(body: Any) -> dict[str, Any] | None:
    if isinstance(body, list):
        for task in body:
            if isinstance(task, dict) and task.get("taskType") == TASK_TYPE:
                return task
    return None


# ---------------------------------------------------------------------- response helpers


def _result_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict) and item.get("taskType", TASK_TYPE) == TASK_TYPE]


def _finished(item: dict[str, Any]) -> bool:
    status = item.get("status")
    if isinstance(status, str):
        return status in _FINISHED
    return any(key in item for key in ("text", "reasoningContent", "tools", "finishReason"))


def _errors_event(errors: Any) -> Error | None:
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        return _error(first)
    if isinstance(errors, dict):
        return _error(errors)
    return None


def _error(raw: dict[str, Any]) -> Error:
    code = raw.get("code")
    message = raw.get("message") or code or "Runware reported an error"
    return Error(str(message), None if code is None else str(code))


def _reasoning_text(value: Any) -> str:
    """``reasoningContent``: a string in streams, a list of strings in the legacy SDK's result type."""
    if isinstance(value, list):
        return "".join(str(part) for part in value if part)
    return value if isinstance(value, str) else ""


def _tool_deltas(calls: Any, start: int, choice: int) -> list[Event]:
    out: list[Event] = []
    for offset, call in enumerate(calls if isinstance(calls, list) else ()):
        if not isinstance(call, dict):
            continue
        value = call.get("input", call.get("arguments"))
        arguments = value if isinstance(value, str) else json.dumps(value if value is not None else {})
        out.append(ToolCallDelta(start + offset, call.get("id") or None, call.get("name") or None, arguments, choice))
    return out


def _usage(raw: Any, cost: Any) -> Usage | None:
    """Runware's ``usage`` (camelCase) and ``cost`` as a normalized :class:`Usage`."""
    if not isinstance(raw, dict) and not isinstance(cost, (int, float)):
        return None
    raw = raw if isinstance(raw, dict) else {}
    prompt = int(raw.get("promptTokens") or raw.get("inputTokens") or 0)
    completion = int(raw.get("completionTokens") or raw.get("outputTokens") or 0)
    total = raw.get("totalTokens")
    details = raw.get("completionTokensDetails") or {}
    reasoning = raw.get("thinkingTokens") or (details.get("reasoningTokens") if isinstance(details, dict) else 0)
    cached_details = raw.get("promptTokensDetails") or {}
    cached = int(cached_details.get("cachedTokens") or 0) if isinstance(cached_details, dict) else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(total) if total is not None else prompt + completion,
        cache_hit_tokens=cached,
        cache_miss_tokens=max(prompt - cached, 0),
        reasoning_tokens=int(reasoning or 0),
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


def _index(obj: dict[str, Any], key: str, default: int) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _delta(chunk: dict[str, Any]) -> dict[str, Any]:
    """``delta`` of a chunk, or the legacy ``choices[0].delta``; ``{}`` when neither is there."""
    delta = chunk.get("delta")
    if isinstance(delta, dict):
        return delta
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    legacy = first.get("delta") if isinstance(first, dict) else None
    return legacy if isinstance(legacy, dict) else {}


def _finish_reason(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _FINISH_REASONS.get(value, value)


def _item_events(items: list[dict[str, Any]]) -> list[Event]:
    """Events of finished result items, one choice per item (``resultIndex`` when given)."""
    if not items:
        return []
    first = items[0]
    events: list[Event] = [ResponseMeta(id=first.get("taskUUID"), model=first.get("model"))]
    total: Usage | None = None
    for position, item in enumerate(items):
        index = _index(item, "resultIndex", position)
        if item.get("status") in ("error", "failed"):
            error = item.get("error")
            events.append(_error(error) if isinstance(error, dict) else Error("Runware reported the task failed"))
            continue
        reasoning = _reasoning_text(item.get("reasoningContent"))
        if reasoning:
            events.append(ReasoningDelta(reasoning, index))
        text = item.get("text")
        if isinstance(text, str) and text:
            events.append(ContentDelta(text, index))
        events.extend(_tool_deltas(item.get("tools") or item.get("toolCalls"), 0, index))
        events.append(Finish(_finish_reason(item.get("finishReason")), choice=index))
        usage = _usage(item.get("usage"), item.get("cost"))
        if usage is not None:
            total = usage if total is None else total + usage
    if total is not None:
        events.append(total)
    return events


class TaskStreamParser:
    """Decodes Runware's SSE payloads: ``{taskUUID, taskType, delta:{text|reasoningContent}, finishReason, ...}``.

    Lenient on purpose: the chunk format moved during 2026 from
    ``choices[0].delta.content`` to ``delta.content`` to ``delta.text``, and
    the legacy SDK also unwraps ``{"data": {...}}`` (providers.md §1.6).
    """

    __slots__ = ("_meta_sent", "_tools_seen", "done", "malformed")

    def __init__(self) -> None:
        self.done = False
        self.malformed = 0
        self._meta_sent = False
        self._tools_seen = 0

    def feed(self, data: str) -> list[Event]:
        if data == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            self.malformed += 1
            return []
        if isinstance(chunk, dict) and isinstance(chunk.get("data"), dict):
            chunk = chunk["data"]
        if not isinstance(chunk, dict):
            self.malformed += 1
            return []
        error = _errors_event(chunk.get("errors"))
        if error is None and isinstance(chunk.get("error"), dict):
            error = _error(chunk["error"])
        if error is not None:
            return [error]
        events: list[Event] = []
        if not self._meta_sent and chunk.get("taskUUID"):
            events.append(ResponseMeta(id=chunk["taskUUID"], model=chunk.get("model")))
            self._meta_sent = True
        index = _index(chunk, "resultIndex", 0)
        delta = _delta(chunk)
        reasoning = delta.get("reasoningContent") or delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning, index))
        text = delta.get("text") if "text" in delta else delta.get("content")
        if isinstance(text, str) and text:
            events.append(ContentDelta(text, index))
        calls = _tool_deltas(delta.get("tools"), self._tools_seen, index)
        self._tools_seen += len(calls)
        events.extend(calls)
        reason = chunk.get("finishReason")
        if reason:
            events.append(Finish(_finish_reason(reason), choice=index))
        usage = _usage(chunk.get("usage"), chunk.get("cost"))
        if usage is not None:
            events.append(usage)
        return events


RUNWARE = RunwareProvider()
