"""Runware's native task protocol, served at ``POST /v1`` beside the DeepSeek routes.

The body is a JSON array of tasks (shared/reference/providers.md §1). The
emulator answers one ``textInference`` task per request, in the three delivery
methods, or one ``getResponse`` poll; an ``authentication`` task in front is
accepted in place of the Bearer header and ``ping`` gets its ``pong``.
Replies reuse the DeepSeek emulator's composer, so the same conversation gets
the same deterministic text here, shown with the AIR model id.

- ``sync``: ``{"data": [result, ...]}``, one result per ``numberResults``.
- ``stream``: SSE ``data: {taskUUID, taskType, delta: {text|reasoningContent},
  finishReason}`` chunks; the last carries ``finishReason``, ``usage`` and
  ``cost``; then ``data: [DONE]``.
- ``async``: an immediate ``{"data": [{taskType, taskUUID}]}``; ``getResponse``
  then reports ``status: "processing"`` for the first :data:`PENDING_POLLS`
  polls (and until a ``stall=`` fault's seconds have passed), then
  ``"success"`` with the result, or ``"error"`` with an ``error`` object.

Results carry ``text``, ``reasoningContent`` (a list of strings, the legacy
SDK's type), ``finishReason``, ``usage`` (``promptTokens``,
``completionTokens`` including thinking, ``totalTokens``, ``thinkingTokens``)
and ``cost``. Runware's DeepSeek prices were not found, so ``cost`` uses
DeepSeek's own list prices (providers.md §4.1) as a deterministic stand-in.
Model-issued tool calls come as ``tools: [{id, name, input}]`` (``delta.tools``
in streams): an assumption, the real field is not documented.

Errors use Runware's envelope ``{"errors": [{code, message, parameter,
taskType, taskUUID}]}``. Codes follow Runware's ``invalid*`` naming; the
exact strings are the emulator's own. ``X-Emulator-Fault`` works as on the
DeepSeek routes (``status=``, ``retry_after=``, and for streams ``drop_after``,
``stall``, ``malformed_after``, ``keepalive``, ``trickle``), plus one key of
its own: ``error_after=N`` ends a stream after N chunks with an in-stream
``{"errors": [...]}`` (an async task ends with ``status: "error"``, a sync one
answers 500).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deepseek_magic.core import limits
from deepseek_magic.emulator.bodies import read_capped
from deepseek_magic.emulator.config import EmulatorConfig
from deepseek_magic.emulator.faults import Fault, parse_fault
from deepseek_magic.emulator.generation import Choice, realise
from deepseek_magic.emulator.replies import compose
from deepseek_magic.emulator.request import ChatRequest
from deepseek_magic.emulator.responses import PlannedResponse
from deepseek_magic.emulator.usage import prompt_tokens
from deepseek_magic.emulator.wire import body_plan, is_simple, stream_plan

if TYPE_CHECKING:
    from deepseek_magic.emulator.app import EmulatorState

TASK_PATHS = ("/v1",)
FAULT_HEADER = "x-emulator-fault"  # the same header the DeepSeek routes read
TEXT = "textInference"
#: AIR ids the emulator serves. Slugs (deepseek-v4-pro) are refused: the SDKs say the server only knows AIRs.
MODELS = ("deepseek:v4@flash", "deepseek:v4@pro")
#: USD per 1M tokens (input, output): DeepSeek's list prices, standing in for Runware's unpublished ones.
PRICES: dict[str, tuple[float, float]] = {"deepseek:v4@flash": (0.14, 0.28), "deepseek:v4@pro": (0.435, 0.87)}
THINKING_LEVELS: dict[str, str | None] = {"none": None, "high": "high", "max": "max"}
DELIVERY_METHODS = ("sync", "stream", "async")
MAX_TOKENS = 100_000
MAX_STOP_SEQUENCES = 5
NUMBER_RESULTS = (1, 4)
BUILTIN_TOOLS = ("search", "codeInterpreter")
TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")
PENDING_POLLS = 2
#: Tasks kept for ``getResponse`` and task UUIDs remembered for the duplicate check.
MAX_TASKS = 10_000
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
#: Task fields that do not change what the model says (so sync, stream and async agree).
_DELIVERY_FIELDS = ("taskUUID", "deliveryMethod", "includeCost", "includeUsage", "webhookURL")
_CUT_SETTINGS = ("maxTokens", "stopSequences")

#: Statuses a ``status=`` fault may force: Runware-style code and message for each.
FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalidRequest", "The request is invalid (emulated fault, status=400)."),
    401: ("invalidApiKey", "Invalid API key."),
    402: ("insufficientCredits", "Insufficient credits to run this task."),
    422: ("invalidParameters", "Invalid parameters (emulated fault, status=422)."),
    429: ("queueCapacityExceeded", "Queue capacity exceeded; retry shortly."),
    500: ("internalServerError", "Internal server error."),
    502: ("badGateway", "Bad gateway."),
    503: ("capacityConstraint", "Temporary capacity constraint; retry shortly."),
    504: ("maxQueueWaitExceeded", "Maximum queue wait exceeded; retry shortly."),
}
PROVIDER_TIMEOUT = {"code": "timeoutProvider", "message": "The provider timed out."}


class RunwareError(Exception):
    """An error answer in Runware's ``{"errors": [...]}`` envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        parameter: str | None = None,
        task: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter
        self.task = task or {}
        self.headers = dict(headers or {})

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.parameter is not None:
            entry["parameter"] = self.parameter
        for key in ("taskType", "taskUUID"):
            if isinstance(self.task.get(key), str):
                entry[key] = self.task[key]
        return entry

    def response(self) -> Response:
        return _json({"errors": [self.entry()]}, self.status, self.headers)


def invalid(parameter: str, message: str, task: dict[str, Any], code: str | None = None) -> RunwareError:
    """A 400 naming the offending parameter."""
    name = parameter.split(".")[-1].split("[")[0]
    return RunwareError(400, code or f"invalid{name[:1].upper()}{name[1:]}", message, parameter=parameter, task=task)


@dataclass
class _Task:
    """An async task waiting to be fetched with ``getResponse``."""

    items: list[dict[str, Any]]
    ready_at: float
    polls_left: int = PENDING_POLLS
    error: dict[str, Any] | None = None


@dataclass
class TaskStore:
    """Async results by task UUID, and every UUID seen (a reused one is refused)."""

    tasks: OrderedDict[str, _Task] = field(default_factory=OrderedDict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, task_uuid: str) -> bool:
        """Remember ``task_uuid``; False when it was used before."""
        with self.lock:
            if task_uuid in self.seen:
                return False
            self.seen[task_uuid] = None
            while len(self.seen) > MAX_TASKS:
                self.seen.popitem(last=False)
            return True

    def put(self, task_uuid: str, task: _Task) -> None:
        with self.lock:
            self.tasks[task_uuid] = task
            while len(self.tasks) > MAX_TASKS:
                self.tasks.popitem(last=False)

    def poll(self, task_uuid: str) -> tuple[str, _Task] | None:
        """(status, task) for one ``getResponse``; each early poll uses up one pending answer."""
        with self.lock:
            task = self.tasks.get(task_uuid)
            if task is None:
                return None
            if task.polls_left > 0 or time.monotonic() < task.ready_at:
                task.polls_left = max(task.polls_left - 1, 0)
                return "processing", task
            return ("error" if task.error else "success"), task


def runware_routes(state: EmulatorState) -> list[Route]:
    """The Runware task endpoint(s), sharing ``state`` (config, recording, faults) with the app."""
    store = TaskStore()

    async def endpoint(request: Request) -> Response:
        try:
            return await _handle(state, store, request)
        except RunwareError as error:
            return error.response()
        except Exception:
            return RunwareError(500, "internalServerError", "Internal server error (emulator bug).").response()

    return [Route(path, endpoint, methods=["POST"]) for path in TASK_PATHS]


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(payload, status_code=status, headers={"x-emulator": "deepseek-magic", **(headers or {})})


async def _read_body(request: Request, cap: int) -> bytes:
    return await read_capped(
        request, cap, RunwareError(413, "payloadTooLarge", f"Request body too large: the limit is {cap} bytes.")
    )


def split_fault(spec: str | None) -> tuple[str | None, int | None]:
    """The shared fault spec without this route's own ``error_after=N`` item, and N."""
    if spec is None:
        return None, None
    kept: list[str] = []
    error_after: int | None = None
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key.strip().lower() == "error_after":
            if not value.strip().isdigit():
                raise ValueError(f"error_after must be a whole number >= 0, got {value.strip()!r}")
            error_after = int(value.strip())
        else:
            kept.append(item)
    return ",".join(kept), error_after


def _presented_key(request: Request, tasks: list[Any]) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        return key.strip() if scheme.lower() == "bearer" else None
    first = tasks[0] if tasks else None
    if isinstance(first, dict) and first.get("taskType") == "authentication" and isinstance(first.get("apiKey"), str):
        return str(first["apiKey"])
    return None


def _fault_error(fault: Fault) -> RunwareError | None:
    if fault.status is None:
        return None
    code, message = FAULT_ERRORS[fault.status]
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    return RunwareError(fault.status, code, message, task={"taskType": TEXT}, headers=headers)


async def _handle(state: EmulatorState, store: TaskStore, request: Request) -> Response:
    config = state.config
    try:
        raw = await _read_body(request, config.max_body_bytes)
    except RunwareError:
        state.record(request, None)
        raise
    try:
        body: Any = json.loads(raw.decode("utf-8"))
        syntax: RunwareError | None = None
    except (UnicodeDecodeError, ValueError, RecursionError):
        body, syntax = None, RunwareError(400, "invalidJson", "The request body is not valid JSON.")
    state.record(request, body)
    try:
        spec, error_after = split_fault(state.next_fault(request.headers.get(FAULT_HEADER)))
        fault = parse_fault(spec)
    except ValueError as exc:
        raise RunwareError(400, "emulatorError", f"Invalid X-Emulator-Fault spec: {exc}") from None
    tasks = body if isinstance(body, list) else []
    if config.api_key is not None and _presented_key(request, tasks) != config.api_key:
        raise RunwareError(401, "invalidApiKey", "Invalid API key.", task={"taskType": "authentication"})
    forced = _fault_error(fault)
    if forced is not None:
        raise forced
    if syntax is not None:
        raise syntax
    if not isinstance(body, list) or not body:
        raise RunwareError(400, "invalidRequestBody", "The request body must be a non-empty JSON array of tasks.")
    work = [task for task in body if not (isinstance(task, dict) and task.get("taskType") == "authentication")]
    if len(work) != 1 or not isinstance(work[0], dict):
        raise RunwareError(400, "invalidRequestBody", "The emulator answers exactly one task object per request.")
    task = work[0]
    kind = task.get("taskType")
    if kind == "ping":
        return _json({"data": [{"taskType": "ping", "pong": True}]})
    if kind == "getResponse":
        return _get_response(store, task)
    if kind != TEXT:
        raise invalid("taskType", f"Unsupported taskType {kind!r}: the emulator serves {TEXT} and getResponse.", task)
    parsed = parse_task(task)
    if not store.claim(parsed.uuid):
        raise invalid(
            "taskUUID", "This taskUUID was already used; send a fresh UUID v4 per task.", task, "duplicateTaskUUID"
        )
    return await anyio.to_thread.run_sync(_answer, state, store, parsed, fault, error_after)


# ---------------------------------------------------------------------- validation


@dataclass(frozen=True)
class TextTask:
    """A validated ``textInference`` task, and the DeepSeek-style request the composer reads."""

    raw: dict[str, Any]
    uuid: str
    model: str
    delivery: str
    include_cost: bool
    include_usage: bool
    chat: ChatRequest


def parse_task(task: dict[str, Any]) -> TextTask:
    """Validate ``task``; raises :class:`RunwareError` (400) naming the parameter."""
    task_uuid = task.get("taskUUID")
    if not isinstance(task_uuid, str) or not _UUID4.match(task_uuid):
        raise invalid("taskUUID", "taskUUID must be a UUID v4 string (lowercase, hyphenated).", task)
    model = task.get("model")
    if model not in MODELS:
        raise invalid("model", f"Unknown model {model!r}; DeepSeek V4 AIR ids are {', '.join(MODELS)}.", task)
    delivery = task.get("deliveryMethod", "sync")
    if delivery not in DELIVERY_METHODS:
        raise invalid("deliveryMethod", f"deliveryMethod must be one of {', '.join(DELIVERY_METHODS)}.", task)
    options = task.get("settings", {})
    if not isinstance(options, dict):
        raise invalid("settings", "settings must be an object.", task)
    system = options.get("systemPrompt", "")
    if not isinstance(system, str):
        raise invalid("settings.systemPrompt", "systemPrompt must be a string.", task)
    level = options.get("thinkingLevel", "none")
    if level not in THINKING_LEVELS:
        raise invalid("settings.thinkingLevel", f"thinkingLevel must be one of {', '.join(THINKING_LEVELS)}.", task)
    max_tokens = _integer(task, options, "maxTokens", 1, MAX_TOKENS)
    for name, low, high in (
        ("temperature", 0, 2),
        ("topP", 0, 1),
        ("presencePenalty", -2, 2),
        ("frequencyPenalty", -2, 2),
    ):
        _number(task, options, name, low, high)
    stop = _stop(task, options)
    n = _integer(task, task, "numberResults", *NUMBER_RESULTS) or 1
    if n > 1 and delivery == "stream":
        raise invalid("numberResults", "numberResults above 1 cannot be streamed.", task)
    for flag in ("includeCost", "includeUsage"):
        if not isinstance(task.get(flag, False), bool):
            raise invalid(flag, f"{flag} must be a boolean.", task)
    seed = task.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid("seed", "seed must be an integer.", task)
    output = task.get("outputFormat", "TEXT")
    if output not in ("TEXT", "JSON") or (output == "JSON" and model != "deepseek:v4@flash"):
        raise invalid("outputFormat", f"outputFormat for {model} must be TEXT (JSON only on deepseek:v4@flash).", task)
    messages = _messages(task, system)
    thinking = THINKING_LEVELS[level] is not None
    functions = _tools(task)
    choice, forced = _tool_choice(task, functions, thinking)
    chat = ChatRequest(
        body=task,
        model=str(model),
        thinking=thinking,
        effort=THINKING_LEVELS[level] or "high",
        messages=messages,
        stream=delivery == "stream",
        include_usage=bool(task.get("includeUsage")),
        max_tokens=max_tokens,
        stop=stop,
        n=n,
        tools=functions,
        tool_choice=choice,
        forced_tool=forced,
        json_mode=output == "JSON",
        logprobs=False,
        top_logprobs=0,
        user_id=None,
        prefix=False,
    )
    return TextTask(
        task, task_uuid, str(model), str(delivery), bool(task.get("includeCost")), bool(task.get("includeUsage")), chat
    )


def _integer(task: dict[str, Any], where: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = where.get(name)
    if value is None:
        return None
    path = name if where is task else f"settings.{name}"
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(path, f"{name} must be an integer between {low} and {high}.", task)
    return value


def _number(task: dict[str, Any], options: dict[str, Any], name: str, low: float, high: float) -> None:
    value = options.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise invalid(f"settings.{name}", f"{name} must be a number between {low:g} and {high:g}.", task)


def _stop(task: dict[str, Any], options: dict[str, Any]) -> tuple[str, ...]:
    stop = options.get("stopSequences")
    if stop is None:
        return ()
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise invalid("settings.stopSequences", "stopSequences must be a list of strings.", task)
    if len(stop) > MAX_STOP_SEQUENCES:
        raise invalid("settings.stopSequences", f"stopSequences takes at most {MAX_STOP_SEQUENCES} items.", task)
    return tuple(item for item in stop if item)


def _messages(task: dict[str, Any], system: str) -> list[dict[str, Any]]:
    """Runware messages as the DeepSeek-shaped list the composer reads."""
    messages = task.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "messages must be a non-empty array.", task)
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid(where, f"{where} must be an object.", task, "invalidMessages")
        role = message.get("role")
        content = message.get("content", "")
        if not isinstance(content, str):
            raise invalid(f"{where}.content", f"{where}.content must be a string.", task, "invalidMessages")
        if role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            out.append(_assistant(task, where, message, content))
        elif role == "tool":
            if not isinstance(message.get("id"), str):
                raise invalid(
                    f"{where}.id", f"{where} (tool) needs the id of the call it answers.", task, "invalidMessages"
                )
            out.append({"role": "tool", "tool_call_id": message["id"], "content": content})
        elif role == "system":
            raise invalid(
                f"{where}.role",
                "Use settings.systemPrompt for the system prompt, not a system message.",
                task,
                "invalidMessages",
            )
        else:
            raise invalid(f"{where}.role", f"{where}.role must be user, assistant or tool.", task, "invalidMessages")
    if messages[-1].get("role") != "user":
        raise invalid("messages", "The final message must have the user role.", task, "invalidMessages")
    return out


def _assistant(task: dict[str, Any], where: str, message: dict[str, Any], content: str) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": content}
    calls = message.get("tools")
    if calls is None:
        return out
    if not isinstance(calls, list):
        raise invalid(
            f"{where}.tools", f"{where}.tools must be an array of {{id, name, input}}.", task, "invalidMessages"
        )
    converted = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(call.get("name"), str):
            raise invalid(f"{where}.tools", f"{where}.tools entries need id, name and input.", task, "invalidMessages")
        value = call.get("input", {})
        arguments = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        converted.append(
            {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": arguments}}
        )
    out["tool_calls"] = converted
    return out


def _tools(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Function tools in the DeepSeek shape the composer reads; built-in tools are checked, then skipped."""
    tools = task.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools", "tools must be an array.", task)
    functions: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in BUILTIN_TOOLS:
            continue
        if kind != "function" or not isinstance(tool, dict):
            allowed = ", ".join(("function", *BUILTIN_TOOLS))
            raise invalid(f"{where}.type", f"{where}.type must be one of {allowed}.", task, "invalidTools")
        schema = tool.get("schema", {"type": "object", "properties": {}})
        if not isinstance(schema, dict):
            raise invalid(f"{where}.schema", f"{where}.schema must be a JSON Schema object.", task, "invalidTools")
        function = {"name": tool.get("name"), "parameters": schema}
        functions.append({"type": "function", "function": function})
    problem = limits.tools_problem(functions)
    if problem:
        raise invalid("tools", f"Invalid tools: {problem}.", task, "invalidTools")
    return functions


def _tool_choice(task: dict[str, Any], functions: list[dict[str, Any]], thinking: bool) -> tuple[str, str | None]:
    """Runware's ``toolChoice`` as the composer's (none | auto | required | named, forced name)."""
    names = [str(tool["function"]["name"]) for tool in functions]
    choice = task.get("toolChoice")
    if choice is None:
        return ("auto" if functions else "none"), None
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICE_TYPES:
        raise invalid("toolChoice", f"toolChoice.type must be one of {', '.join(TOOL_CHOICE_TYPES)}.", task)
    kind = str(choice["type"])
    if kind == "tool" and choice.get("name") not in names:
        raise invalid(
            "toolChoice.name", "toolChoice.name must name one of the function tools.", task, "invalidToolChoice"
        )
    if kind in ("any", "tool") and thinking:
        raise invalid("toolChoice", "Thinking mode does not support this toolChoice.", task, "invalidToolChoice")
    if kind in ("any", "tool") and not functions:
        raise invalid("toolChoice", "toolChoice any/tool needs function tools.", task, "invalidToolChoice")
    mapped = {"auto": "auto", "none": "none", "any": "required", "tool": "named"}[kind]
    return mapped, (str(choice["name"]) if kind == "tool" else None)


# ---------------------------------------------------------------------- answers


def _seed(task: dict[str, Any]) -> int:
    """Same conversation and parameters -> same reply, whatever the delivery method or UUID."""
    content = {k: v for k, v in task.items() if k not in _DELIVERY_FIELDS}
    if isinstance(content.get("settings"), dict):
        content["settings"] = {k: v for k, v in content["settings"].items() if k not in _CUT_SETTINGS}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=repr)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class _Result:
    choice: Choice
    usage: dict[str, Any]
    cost: float


def _results(parsed: TextTask) -> list[_Result]:
    chat = parsed.chat
    seed = _seed(parsed.raw)
    prompt = len(prompt_tokens(chat))
    price_in, price_out = PRICES[parsed.model]
    results = []
    for index in range(chat.n):
        reply = compose(chat, random.Random(seed + index))
        choice = realise(reply, index=index, max_tokens=chat.max_tokens, stop=chat.stop)
        completion = choice.completion_tokens
        usage: dict[str, Any] = {
            "promptTokens": prompt,
            "completionTokens": completion,
            "totalTokens": prompt + completion,
        }
        if chat.thinking:
            usage["thinkingTokens"] = choice.reasoning_tokens
        cost = round((prompt * price_in + completion * price_out) / 1_000_000, 10)
        results.append(_Result(choice, usage, cost))
    return results


def _tool_entries(choice: Choice) -> list[dict[str, Any]]:
    entries = []
    for call in choice.tool_calls:
        try:
            value: Any = json.loads(call.arguments)
        except ValueError:
            value = call.arguments  # cut by maxTokens: sent as the text it is
        entries.append({"id": call.call_id, "name": call.name, "input": value})
    return entries


def _item(parsed: TextTask, result: _Result) -> dict[str, Any]:
    choice = result.choice
    item: dict[str, Any] = {"taskType": TEXT, "taskUUID": parsed.uuid, "text": choice.content}
    if choice.reasoning:
        item["reasoningContent"] = [choice.reasoning]
    calls = _tool_entries(choice)
    if calls:
        item["tools"] = calls
    item["finishReason"] = choice.finish_reason
    if parsed.include_usage:
        item["usage"] = result.usage
    if parsed.include_cost:
        item["cost"] = result.cost
    return item


def _chunks(parsed: TextTask, result: _Result) -> list[dict[str, Any]]:
    head = {"taskUUID": parsed.uuid, "taskType": TEXT}
    chunks: list[dict[str, Any]] = []
    for delta in result.choice.deltas:
        if delta.kind == "reasoning":
            chunks.append({**head, "delta": {"reasoningContent": delta.text}, "finishReason": None})
        elif delta.kind == "content":
            chunks.append({**head, "delta": {"text": delta.text}, "finishReason": None})
    for call in _tool_entries(result.choice):
        chunks.append({**head, "delta": {"tools": [call]}, "finishReason": None})
    final: dict[str, Any] = {**head, "delta": {}, "finishReason": result.choice.finish_reason}
    if parsed.include_usage:
        final["usage"] = result.usage
    if parsed.include_cost:
        final["cost"] = result.cost
    chunks.append(final)
    return chunks


def _answer(
    state: EmulatorState, store: TaskStore, parsed: TextTask, fault: Fault, error_after: int | None
) -> Response:
    config: EmulatorConfig = state.config
    results = _results(parsed)
    headers = {"x-emulator": "deepseek-magic"}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    failure = {**PROVIDER_TIMEOUT, "taskType": TEXT, "taskUUID": parsed.uuid}
    if parsed.delivery == "async":
        stall = fault.stall or 0.0
        items = [_item(parsed, result) for result in results]
        store.put(
            parsed.uuid, _Task(items, time.monotonic() + stall, error=failure if error_after is not None else None)
        )
        return _json({"data": [{"taskType": TEXT, "taskUUID": parsed.uuid}]}, headers=headers)
    if parsed.delivery == "stream":
        chunks = _chunks(parsed, results[0])
        if error_after is not None:
            chunks = [*chunks[:error_after], {"errors": [failure]}]
        plan = stream_plan(chunks, config, fault)
        headers["cache-control"] = "no-cache"
        media = "text/event-stream; charset=utf-8"
    else:
        if error_after is not None:
            raise RunwareError(500, PROVIDER_TIMEOUT["code"], PROVIDER_TIMEOUT["message"], task=parsed.raw)
        body = json.dumps({"data": [_item(parsed, r) for r in results]}, ensure_ascii=False).encode()
        plan = body_plan(body, sum(r.choice.completion_tokens for r in results), config, fault)
        media = "application/json"
        if is_simple(plan):
            return Response(body, headers=headers, media_type=media)
    return PlannedResponse(
        plan, headers=headers, media_type=media, deadline=config.max_response_seconds, closing=state.closing
    )


def _get_response(store: TaskStore, task: dict[str, Any]) -> Response:
    task_uuid = task.get("taskUUID")
    if not isinstance(task_uuid, str):
        raise invalid("taskUUID", "getResponse needs the taskUUID of an async task.", task)
    found = store.poll(task_uuid)
    if found is None:
        raise invalid("taskUUID", f"No async task with taskUUID {task_uuid}.", task, "taskNotFound")
    status, pending = found
    if status == "processing":
        return _json({"data": [{"taskType": TEXT, "taskUUID": task_uuid, "status": "processing"}]})
    if status == "error":
        return _json({"data": [{"taskType": TEXT, "taskUUID": task_uuid, "status": "error", "error": pending.error}]})
    return _json({"data": [{**item, "status": "success"} for item in pending.items]})


__all__ = ["RunwareError", "TaskStore", "parse_task", "runware_routes", "split_fault"]
