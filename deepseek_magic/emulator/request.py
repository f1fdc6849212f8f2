"""Validate a chat-completions body the way DeepSeek does, into a typed request.

Checks run in DeepSeek's order: first the shape (answered with the deserializer's
wording, "Failed to deserialize the JSON body ..."), then the model, then value
ranges (numbers from :mod:`deepseek_magic.core.limits`, so the client's own checks
and the emulator never disagree), then the semantic rules of thinking mode,
tools, JSON mode and prefix completion (message checks live in :mod:`.messages`).
Every failure is an :class:`ApiError` 400; nothing here may raise anything else
on bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deepseek_magic.core import limits
from deepseek_magic.emulator.errors import bad_request, describe_json, deserialize_error
from deepseek_magic.emulator.messages import check_messages, check_prefix, check_turns
from deepseek_magic.emulator.prompt import text_of

#: Accepted model names -> (name echoed in replies, thinking default).
MODELS: dict[str, tuple[str, bool]] = {
    "deepseek-v4-flash": ("deepseek-v4-flash", True),
    "deepseek-v4-pro": ("deepseek-v4-pro", True),
    "deepseek-flash": ("deepseek-flash", True),
    "deepseek-chat": ("deepseek-v4-flash", False),
    "deepseek-reasoner": ("deepseek-v4-flash", True),
}

#: Effort names DeepSeek accepts, mapped as its compatibility table does (V4-Sep+).
EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "high",
    "high": "high",
    "xhigh": "high",
    "max": "max",
    "ultra": "max",
}


@dataclass(frozen=True)
class ChatRequest:
    """A validated request: the raw body plus the facts the reply depends on."""

    body: dict[str, Any]
    model: str
    thinking: bool
    effort: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    stop: tuple[str, ...]
    n: int
    tools: list[dict[str, Any]]
    tool_choice: str
    forced_tool: str | None
    json_mode: bool
    logprobs: bool
    top_logprobs: int
    user_id: str | None
    prefix: bool

    @property
    def tool_names(self) -> list[str]:
        """Names of the functions offered in ``tools``."""
        return [str(tool["function"]["name"]) for tool in self.tools]


def parse_body(raw: bytes) -> object:
    """Decode JSON; a syntax error becomes DeepSeek's (axum's) 400 wording."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("Failed to parse the request body as JSON: invalid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"Failed to parse the request body as JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise bad_request("Failed to parse the request body as JSON: recursion limit exceeded") from None


def parse_chat_request(body: object, *, beta: bool) -> ChatRequest:
    """Validate ``body`` (already JSON-decoded); raises :class:`ApiError`."""
    if not isinstance(body, dict):
        raise deserialize_error(f"invalid type: {describe_json(body)}, expected struct ChatCompletionRequest")
    model = body.get("model")
    if "model" not in body:
        raise deserialize_error("missing field `model`")
    if not isinstance(model, str):
        raise deserialize_error(f"model: invalid type: {describe_json(model)}, expected a string")
    messages = check_messages(body)
    thinking_field = _thinking(body)
    effort_field = _effort(body)
    stream = _bool(body, "stream")
    if model not in MODELS:
        raise bad_request("Model Not Exist")
    echo, thinking_default = MODELS[model]
    thinking = thinking_default if thinking_field is None else thinking_field
    _ranges(body)
    stop = _stop(body)
    _user_and_bias(body)
    tools = _tools(body)
    tool_choice, forced = _tool_choice(body, tools, thinking)
    json_mode = _response_format(body, messages)
    if body.get("stream_options") is not None:
        if not isinstance(body["stream_options"], dict):
            raise deserialize_error(
                f"stream_options: invalid type: {describe_json(body['stream_options'])}, expected struct StreamOptions"
            )
        if not stream:
            raise bad_request("stream_options should be set along with stream = true")
    prefix = check_prefix(messages, beta=beta)
    check_turns(messages, thinking=thinking, tools=tools, prefix=prefix)
    options = body.get("stream_options") or {}
    return ChatRequest(
        body=body,
        model=echo,
        thinking=thinking,
        effort=effort_field or "high",
        messages=messages,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        max_tokens=_int_or_none(body, "max_tokens"),
        stop=stop,
        n=_int_or_none(body, "n") or 1,
        tools=tools,
        tool_choice=tool_choice,
        forced_tool=forced,
        json_mode=json_mode,
        logprobs=_bool(body, "logprobs"),
        top_logprobs=_int_or_none(body, "top_logprobs") or 0,
        user_id=body.get("user_id") if isinstance(body.get("user_id"), str) else None,
        prefix=prefix,
    )


def _bool(body: dict[str, Any], field: str) -> bool:
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise deserialize_error(f"{field}: invalid type: {describe_json(value)}, expected a boolean")
    return value


def _int_or_none(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _thinking(body: dict[str, Any]) -> bool | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        raise deserialize_error(f"thinking: invalid type: {describe_json(thinking)}, expected struct Thinking")
    kind = thinking.get("type", "enabled")
    if kind not in ("enabled", "disabled"):
        raise deserialize_error(f"thinking.type: unknown variant `{kind}`, expected `enabled` or `disabled`")
    return bool(kind == "enabled")


def _effort(body: dict[str, Any]) -> str | None:
    """Top-level ``reasoning_effort``, or Anyfast's ``thinking.reasoning_effort``."""
    value = body.get("reasoning_effort")
    thinking = body.get("thinking")
    if value is None and isinstance(thinking, dict):
        value = thinking.get("reasoning_effort")
    if value is None:
        return None
    if not isinstance(value, str) or value not in EFFORTS:
        expected = ", ".join(f"`{name}`" for name in limits.EFFORTS)
        shown = value if isinstance(value, str) else describe_json(value)
        raise deserialize_error(f"reasoning_effort: unknown variant `{shown}`, expected one of {expected}")
    return EFFORTS[value]


_INTEGER_FIELDS = ("max_tokens", "n", "top_logprobs")


def _ranges(body: dict[str, Any]) -> None:
    for field, (low, high) in limits.RANGES.items():
        value = body.get(field)
        if value is None:
            continue
        integer = field in _INTEGER_FIELDS
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and isinstance(value, float)):
            expected = "an integer" if integer else "a number"
            raise deserialize_error(f"{field}: invalid type: {describe_json(value)}, expected {expected}")
        if limits.range_problem(field, value) is not None:
            raise bad_request(f"Invalid {field} value, the valid range of {field} is [{_fmt(low)}, {_fmt(high)}]")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise deserialize_error(f"seed: invalid type: {describe_json(seed)}, expected an integer")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise deserialize_error(f"stop: invalid type: {describe_json(stop)}, expected a string or a list of strings")
    problem = limits.stop_problem(stop)
    if problem:
        raise bad_request(f"Invalid stop value: {problem}")
    return tuple(item for item in stop if item)


def _user_and_bias(body: dict[str, Any]) -> None:
    user_id = body.get("user_id")
    if user_id is not None:
        if not isinstance(user_id, str):
            raise deserialize_error(f"user_id: invalid type: {describe_json(user_id)}, expected a string")
        problem = limits.user_id_problem(user_id)
        if problem:
            raise bad_request(f"Invalid user_id value: {problem}")
    bias = body.get("logit_bias")
    if bias is not None:
        if not isinstance(bias, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bias.values()
        ):
            raise deserialize_error(f"logit_bias: invalid type: {describe_json(bias)}, expected a map of numbers")
        problem = limits.logit_bias_problem(bias)
        if problem:
            raise bad_request(f"Invalid logit_bias value: {problem}")


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise deserialize_error(f"tools: invalid type: {describe_json(tools)}, expected a sequence")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise deserialize_error(f"tools[{index}]: missing field `function`")
        if tool.get("type", "function") != "function":
            raise deserialize_error(f"tools[{index}].type: unknown variant `{tool.get('type')}`, expected `function`")
        parameters = tool["function"].get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise deserialize_error(f"tools[{index}].function.parameters: expected a JSON Schema object")
    problem = limits.tools_problem(tools)
    if problem:
        raise bad_request(f"Invalid tools: {problem}")
    return tools


def _tool_choice(body: dict[str, Any], tools: list[dict[str, Any]], thinking: bool) -> tuple[str, str | None]:
    """Normalise ``tool_choice`` to ("none"|"auto"|"required"|"named", forced name)."""
    choice = body.get("tool_choice")
    names = [str(tool["function"]["name"]) for tool in tools]
    if choice is None:
        return ("auto" if tools else "none"), None
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise deserialize_error(
                f"tool_choice: unknown variant `{choice}`, expected one of `none`, `auto`, `required`"
            )
        kind, forced = choice, None
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if not isinstance(name, str):
            raise deserialize_error("tool_choice.function: missing field `name`")
        kind, forced = "named", name
    else:
        raise deserialize_error(f"tool_choice: invalid type: {describe_json(choice)}, expected a string or an object")
    if kind in ("required", "named"):
        if thinking:
            raise bad_request("Thinking mode does not support this tool_choice")
        if not tools:
            raise bad_request("Invalid tool_choice: `tools` must be provided when tool_choice is required or named")
        if forced is not None and forced not in names:
            raise bad_request(f"Invalid tool_choice: function `{forced}` is not in `tools`")
    return kind, forced


def _response_format(body: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    fmt = body.get("response_format")
    if fmt is None:
        return False
    if not isinstance(fmt, dict):
        raise deserialize_error(f"response_format: invalid type: {describe_json(fmt)}, expected struct ResponseFormat")
    kind = fmt.get("type", "text")
    if kind == "json_schema":
        raise bad_request("This response_format type is unavailable now")
    if kind not in ("text", "json_object"):
        raise deserialize_error(f"response_format.type: unknown variant `{kind}`, expected `text` or `json_object`")
    if kind != "json_object":
        return False
    mentions = any("json" in text_of(m.get("content")).lower() for m in messages if m.get("role") in ("system", "user"))
    if not mentions:
        raise bad_request(
            "Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'."
        )
    return True
