"""The emulator against the real recordings and the official openai SDK.

Shape tests classify every chunk (first, reasoning, content, tool head, tool
arguments, final) and compare key layouts and null/"" patterns with the real
DeepSeek recordings, so a client that parses the emulator parses DeepSeek.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from deepseek_magic.emulator.server import RunningEmulator

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather for a place.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "unit"],
        },
    },
}


def kind(chunk: dict[str, Any]) -> str:
    choice = chunk["choices"][0]
    delta = choice["delta"]
    if choice["finish_reason"] is not None:
        return "final"
    if "role" in delta:
        return "first"
    if "tool_calls" in delta:
        return "tool_head" if "id" in delta["tool_calls"][0] else "tool_args"
    if delta.get("reasoning_content"):
        return "reasoning"
    return "content"


def pattern(value: Any) -> Any:
    """Structure of a value: keys (in order) with the pattern of each, or a value class."""
    if isinstance(value, dict):
        return tuple((key, pattern(item)) for key, item in value.items())
    if isinstance(value, list):
        return ("list", tuple(sorted({pattern(item) for item in value}, key=repr)))
    if value is None:
        return "null"
    if value == "":
        return "empty"
    return type(value).__name__


def shapes(chunks: list[dict[str, Any]]) -> dict[str, set[Any]]:
    """Per chunk kind, the set of layouts seen (ignoring values, keeping null/"" and usage placement)."""
    found: dict[str, set[Any]] = {}
    for chunk in chunks:
        layout = pattern({k: v for k, v in chunk.items() if k != "usage"}), pattern(chunk.get("usage", "absent"))
        found.setdefault(kind(chunk), set()).add(layout)
    return found


def key_layout(value: Any) -> Any:
    """Keys at every level, without value classes (for non-stream bodies)."""
    if isinstance(value, dict):
        return {key: key_layout(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_layout(value[0])] if value else []
    return None


@pytest.mark.parametrize(
    ("recording", "body"),
    [
        ("deepseek-reasoning.chunks.txt", {}),
        ("deepseek-system-fingerprint.chunks.txt", {"thinking": {"type": "disabled"}}),
        ("issue-19381-thinking-reasoning.chunks.txt", {"model": "deepseek-v4-pro", "max_tokens": 2}),
        ("deepseek-v4-sampling-live.chunks.txt", {"max_tokens": 8}),
    ],
)
def test_stream_shapes_match_recordings(wire: Any, real: Any, recording: str, body: dict[str, Any]) -> None:
    result = wire.stream(wire.body("How many r are in strawberry?", stream_options={"include_usage": True}, **body))
    assert result.data[-1] == "[DONE]"
    assert shapes(result.chunks) == shapes(real.chunks(recording))


def test_tool_call_stream_matches_recording(wire: Any, real: Any) -> None:
    body = wire.body(
        "What is the weather in San Francisco? Use weather.",
        tools=[WEATHER_TOOL],
        stream_options={"include_usage": True},
    )
    result = wire.stream(body)
    ours, theirs = shapes(result.chunks), shapes(real.chunks("deepseek-tool-call.chunks.txt"))
    assert ours == theirs
    kinds = [kind(chunk) for chunk in result.chunks]
    # Reasoning precedes every tool fragment; one head, then argument pieces; final last.
    assert kinds[0] == "first" and kinds[-1] == "final"
    assert kinds.index("tool_head") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert kinds.count("tool_head") == 1
    head = result.chunks[kinds.index("tool_head")]["choices"][0]["delta"]["tool_calls"][0]
    assert head["id"].startswith("call_00_") and len(head["id"]) == len("call_00_") + 24


def test_chunks_repeat_id_created_model_fingerprint(wire: Any) -> None:
    chunks = wire.stream(wire.body("hello")).chunks
    assert len({(c["id"], c["created"], c["model"], c["system_fingerprint"]) for c in chunks}) == 1
    # Without include_usage, only the last chunk has a usage key.
    assert [("usage" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]


@pytest.mark.parametrize(
    ("recording", "body"),
    [
        ("deepseek-reasoning.json", {}),
        ("deepseek-text.json", {"thinking": {"type": "disabled"}}),
        ("deepseek-system-fingerprint.json", {"model": "deepseek-chat"}),
        ("deepseek-json.json", {"response_format": {"type": "json_object"}}),
        ("issue-19381-thinking-reasoning.json", {"model": "deepseek-v4-pro", "max_tokens": 2}),
    ],
)
def test_non_stream_bodies_match_recordings(wire: Any, real: Any, recording: str, body: dict[str, Any]) -> None:
    response = wire.post(wire.body("Describe the weather as json, please.", **body))
    assert response.status_code == 200
    assert key_layout(response.json()) == key_layout(real.body(recording))


def test_non_stream_tool_call_body_matches_recording(wire: Any, real: Any) -> None:
    response = wire.post(wire.body("Call weather for San Francisco.", tools=[WEATHER_TOOL]))
    assert key_layout(response.json()) == key_layout(real.body("deepseek-tool-call.json"))
    message = response.json()["choices"][0]["message"]
    assert message["content"] == ""
    assert response.json()["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_sdk_non_stream_with_reasoning(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    reply = client.chat.completions.create(
        model="deepseek-v4-pro",
        messages=[{"role": "user", "content": "Explain list comprehensions"}],
        reasoning_effort="high",
    )
    message = reply.choices[0].message
    assert reply.model == "deepseek-v4-pro"
    assert message.content is not None and message.content.startswith("[emulated]")
    assert "list comprehensions" in message.content
    reasoning = getattr(message, "reasoning_content", None)
    assert isinstance(reasoning, str) and reasoning
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert (reply.usage.completion_tokens_details.reasoning_tokens or 0) > 0


def test_openai_sdk_stream_with_reasoning(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    stream = client.chat.completions.create(
        model="deepseek-v4-flash",
        messages=[{"role": "user", "content": "Name three rivers"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, usage, finish = [], [], None, None
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning.append(getattr(delta, "reasoning_content", None) or "")
        content.append(delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert finish == "stop"
    assert "".join(content).startswith("[emulated]") and "Name three rivers" in "".join(content)
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == sum(1 for piece in reasoning if piece)
    assert usage.completion_tokens == sum(1 for piece in reasoning + content if piece)


def test_openai_sdk_non_thinking_via_extra_body(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    reply = client.chat.completions.create(
        model="deepseek-v4-flash",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"thinking": {"type": "disabled"}},
    )
    assert getattr(reply.choices[0].message, "reasoning_content", None) is None
    assert "thinking off" in (reply.choices[0].message.content or "")


def test_openai_sdk_json_mode(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    for stream in (False, True):
        kwargs: dict[str, Any] = {
            "model": "deepseek-v4-flash",
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {"role": "user", "content": "Describe the columns with keys name, dtype, note:\n- age\n- city"},
            ],
            "response_format": {"type": "json_object"},
        }
        if stream:
            text = "".join(
                c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kwargs)
            )
        else:
            text = client.chat.completions.create(**kwargs).choices[0].message.content or ""
        data = json.loads(text)
        assert [row["name"] for row in data["items"]] == ["age", "city"]
        assert all(set(row) == {"name", "dtype", "note"} for row in data["items"])


def test_openai_sdk_tool_round_trip_with_reasoning_echo(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "Use weather to check Paris in celsius."}]
    first = client.chat.completions.create(model="deepseek-v4-flash", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"  # the SDK's class for it was renamed across releases; the wire field was not
    assert call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"location": "Paris", "unit": "celsius"}
    reasoning = getattr(choice.message, "reasoning_content", None)
    assert isinstance(reasoning, str) and reasoning
    assistant: Any = {
        "role": "assistant",
        "content": choice.message.content,
        "reasoning_content": reasoning,
        "tool_calls": [call.model_dump() for call in calls],
    }
    tool_result: Any = {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temperature": 18, "sky": "clear"}'}
    final = client.chat.completions.create(
        model="deepseek-v4-flash", messages=[*messages, assistant, tool_result], tools=[WEATHER_TOOL]
    )
    assert final.choices[0].finish_reason == "stop"
    assert '{"temperature": 18, "sky": "clear"}' in (final.choices[0].message.content or "")

    without: Any = {key: value for key, value in assistant.items() if key != "reasoning_content"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="deepseek-v4-flash", messages=[*messages, without, tool_result], tools=[WEATHER_TOOL]
        )
    assert caught.value.status_code == 400
    assert "The `reasoning_content` in the thinking mode must be passed back to the API." in str(caught.value)


def test_openai_sdk_stream_tool_call(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    stream = client.chat.completions.create(
        model="deepseek-v4-flash",
        messages=[{"role": "user", "content": "weather in Tokyo please (use weather)"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments, names, finish = "", [], None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function and call.function.name:
                names.append(call.function.name)
            arguments += (call.function.arguments or "") if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["weather"] and finish == "tool_calls"
    assert json.loads(arguments)["location"] == "Tokyo"


def test_openai_sdk_models_and_errors(emu: RunningEmulator) -> None:
    client = openai.OpenAI(base_url=emu.base_url, api_key="sk-emulator", max_retries=0)
    assert [model.id for model in client.models.list()] == ["deepseek-v4-flash", "deepseek-v4-pro"]
    wrong = openai.OpenAI(base_url=emu.base_url, api_key="sk-wrong-1234567890", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": "x"}])
    assert "****7890" in str(caught.value) and "sk-wrong-1234567890" not in str(caught.value)
    emu.config.faults.append("status=429")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": "x"}])
