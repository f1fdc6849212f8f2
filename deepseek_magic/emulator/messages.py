"""Checks on ``messages``: their shape, and DeepSeek's rules across turns.

Shape errors use the deserializer's wording (``messages[N].role: unknown
variant ...``); the cross-turn rules are the ones clients most often trip
over with V4: unique ``tool_call_id`` values, ``reasoning_content`` passed back
on every assistant turn when ``tools`` are sent in thinking mode, and chat
prefix completion only on the beta base URL.
"""

from __future__ import annotations

from typing import Any

from deepseek_magic.emulator.errors import ApiError, bad_request, describe_json, deserialize_error

ROLES = ("system", "user", "assistant", "tool")
REASONING_PASSBACK = "The `reasoning_content` in the thinking mode must be passed back to the API."


def check_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``messages`` list, each message well-formed; raises :class:`ApiError`."""
    if "messages" not in body:
        raise deserialize_error("missing field `messages`")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise deserialize_error(f"messages: invalid type: {describe_json(messages)}, expected a sequence")
    for index, message in enumerate(messages):
        _message_shape(index, message)
    if not messages:
        raise bad_request("Invalid `messages`: the messages list must contain at least one message")
    return messages


def _message_shape(index: int, message: object) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise deserialize_error(f"{where}: invalid type: {describe_json(message)}, expected struct Message")
    if "role" not in message:
        raise deserialize_error(f"{where}: missing field `role`")
    role = message["role"]
    if not isinstance(role, str):
        raise deserialize_error(f"{where}.role: invalid type: {describe_json(role)}, expected a string")
    if role not in ROLES:
        expected = ", ".join(f"`{name}`" for name in ROLES)
        raise deserialize_error(f"{where}.role: unknown variant `{role}`, expected one of {expected}")
    content = message.get("content")
    if role in ("system", "user", "tool") and "content" not in message:
        raise deserialize_error(f"{where}: missing field `content`")
    if content is not None and not isinstance(content, (str, list)):
        raise deserialize_error(f"{where}.content: invalid type: {describe_json(content)}, expected a string")
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise deserialize_error(f"{where}.content: invalid content part, expected an object with `type`")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise deserialize_error(f"{where}: missing field `tool_call_id`")
    if role == "assistant" and message.get("tool_calls") is not None:
        _tool_calls_shape(where, message["tool_calls"])
    for field in ("reasoning_content", "name"):
        value = message.get(field)
        if value is not None and not isinstance(value, str):
            raise deserialize_error(f"{where}.{field}: invalid type: {describe_json(value)}, expected a string")
    if message.get("prefix") is not None and not isinstance(message.get("prefix"), bool):
        raise deserialize_error(f"{where}.prefix: invalid type: {describe_json(message['prefix'])}, expected a boolean")


def _tool_calls_shape(where: str, calls: object) -> None:
    if not isinstance(calls, list):
        raise deserialize_error(f"{where}.tool_calls: invalid type: {describe_json(calls)}, expected a sequence")
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise deserialize_error(f"{where}.tool_calls[{index}]: missing field `function`")
        if not isinstance(function.get("arguments", ""), str):
            raise deserialize_error(f"{where}.tool_calls[{index}].function.arguments: expected a string")


def check_prefix(messages: list[dict[str, Any]], *, beta: bool) -> bool:
    """Whether this is a prefix completion (last assistant message with ``prefix: true``)."""
    marked = [i for i, m in enumerate(messages) if m.get("prefix") is True]
    if not marked:
        return False
    if not beta:
        raise bad_request(
            "Chat prefix completion (`prefix: true` on an assistant message) is a beta feature: "
            "use the beta base URL, e.g. https://api.deepseek.com/beta"
        )
    index = marked[-1]
    if len(marked) > 1 or index != len(messages) - 1 or messages[index].get("role") != "assistant":
        raise bad_request("Invalid `prefix`: only the last message, with role `assistant`, may set `prefix: true`")
    return True


def check_turns(messages: list[dict[str, Any]], *, thinking: bool, tools: list[dict[str, Any]], prefix: bool) -> None:
    """Unique tool_call_id values; reasoning passed back when thinking with tools."""
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if message.get("role") != "tool":
            continue
        call_id = str(message["tool_call_id"])
        if call_id in seen:
            raise bad_request(f"Duplicate value for 'tool_call_id' of {call_id} in message[{index}]")
        seen.add(call_id)
    if not (thinking and tools):
        return
    history = messages[:-1] if prefix else messages
    for message in history:
        if message.get("role") == "assistant" and "reasoning_content" not in message:
            raise ApiError(400, REASONING_PASSBACK)
