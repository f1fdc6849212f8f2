"""Python functions as tools: schemas, the loop through the emulator, failures and limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.events import ToolCall
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.features.tools import RESULT_CAP, Tool, ToolBox, encode_result, tool


def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: The city to look up.
        unit: Temperature unit.
    """
    return {"city": city, "temperature": 21, "unit": unit}


def get_time(zone: str) -> str:
    """The local time in a time zone.

    :param zone: an IANA zone name
    """
    return f"12:00 in {zone}"


def broken(x: int) -> int:
    """Always fails."""
    raise RuntimeError("the sensor is offline")


def test_schema_from_signature_hints_and_docstring() -> None:
    schema = Tool(get_weather).schema()
    assert schema["function"]["name"] == "get_weather"
    assert schema["function"]["description"] == "Current weather for a city."
    parameters = schema["function"]["parameters"]
    assert parameters["required"] == ["city"]
    assert parameters["properties"]["city"] == {"type": "string", "description": "The city to look up."}
    assert parameters["properties"]["unit"]["enum"] == ["C", "F"]
    assert "title" not in parameters and "title" not in parameters["properties"]["city"]
    assert Tool(get_time).schema()["function"]["parameters"]["properties"]["zone"]["description"] == "an IANA zone name"


def test_tool_decorator_renames() -> None:
    renamed = tool(name="weather_now", description="Weather.")(get_weather)
    assert Tool(renamed).schema()["function"]["name"] == "weather_now"
    with pytest.raises(ConfigError, match="tool name"):
        Tool(tool(name="bad name")(get_time))


def test_running_validates_and_reports_errors_as_results() -> None:
    box = ToolBox([get_weather, broken])
    ok = box.run(ToolCall("c1", "get_weather", '{"city": "Paris"}'))
    assert json.loads(ok.content) == {"city": "Paris", "temperature": 21, "unit": "C"} and not ok.failed
    bad_args = box.run(ToolCall("c2", "get_weather", '{"unit": "K"}'))
    assert bad_args.failed and "city" in bad_args.content and "unit" in bad_args.content
    raised = box.run(ToolCall("c3", "broken", '{"x": 1}'))
    assert raised.failed and "RuntimeError: the sensor is offline" in raised.content
    unknown = box.run(ToolCall("c4", "os_system", "{}"))
    assert unknown.failed and "no tool named 'os_system'" in unknown.content and "get_weather" in unknown.content
    garbage = box.run(ToolCall("c5", "get_weather", "{not json"))
    assert garbage.failed and "could not read the arguments" in garbage.content


def test_results_are_capped_with_a_note() -> None:
    text = encode_result("x" * (RESULT_CAP + 500))
    assert len(text) < RESULT_CAP + 100 and "truncated: 500 more characters" in text


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig()) as emu:
        yield emu


def session_for(emu: Any) -> Session:
    return Session(settings=Settings.build(base_url=emu.base_url, api_key="sk-emulator"))


def chat_bodies(emu: Any, since: int) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests[since:] if r.path.endswith("/chat/completions")]


def test_two_round_tool_loop_through_the_emulator(emulator: Any) -> None:
    session = session_for(emulator)
    seen: list[Any] = []
    before = len(emulator.requests)
    reply = session.ask(
        "Call get_weather for Paris and then get_time for Europe/Paris.",
        tools=[get_weather, get_time],
        on_tool=seen.append,
        key="t",
    )
    bodies = chat_bodies(emulator, before)
    assert len(bodies) == 3, "call get_weather, call get_time, answer"
    assert [r.call.name for r in seen] == ["get_weather", "get_time"]
    assert reply.finish_reason == "stop" and "12:00 in" in reply.content
    final = bodies[-1]["messages"]
    assistants = [m for m in final if m["role"] == "assistant"]
    tools = [m for m in final if m["role"] == "tool"]
    assert len(assistants) == 2 and all("reasoning_content" in m for m in assistants)
    assert [m["tool_call_id"] for m in tools] == [a["tool_calls"][0]["id"] for a in assistants]
    assert bodies[0]["tools"][0]["function"]["name"] == "get_weather"
    turn = session.turn("t")
    assert turn is not None and len(turn.intermediate) == 4
    follow = session.ask("Thanks!", tools=[get_weather])
    history = chat_bodies(emulator, before)[-1]["messages"]
    assert [m["role"] for m in history][:6] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert follow.content


def test_a_raising_tool_sends_its_error_and_the_loop_goes_on(emulator: Any) -> None:
    session = session_for(emulator)
    before = len(emulator.requests)
    reply = session.ask("Please call broken with x 3.", tools=[broken])
    bodies = chat_bodies(emulator, before)
    assert len(bodies) == 2
    tool_message = next(m for m in bodies[1]["messages"] if m["role"] == "tool")
    assert "RuntimeError: the sensor is offline" in tool_message["content"]
    assert reply.finish_reason == "stop"


def test_round_limit(emulator: Any) -> None:
    session = session_for(emulator)
    before = len(emulator.requests)
    reply = session.ask(
        "Call get_weather for Oslo and then get_time for UTC.", tools=[get_weather, get_time], max_rounds=1
    )
    assert len(chat_bodies(emulator, before)) == 2
    assert reply.tool_calls and reply.warnings == ["stopped after 1 tool rounds (the limit); the model wanted more"]


def test_unknown_tool_name_from_the_model(emulator: Any) -> None:
    """The model names a tool we were given only as a schema: it is answered with an error, never run."""
    session = session_for(emulator)
    ghost = {"type": "function", "function": {"name": "delete_files", "parameters": {"type": "object"}}}
    before = len(emulator.requests)
    session.ask("Use delete_files now, and get_time for UTC.", tools=[get_time, ghost])
    bodies = chat_bodies(emulator, before)
    results = {m["tool_call_id"]: m["content"] for m in bodies[-1]["messages"] if m["role"] == "tool"}
    assert any("no tool named 'delete_files'" in text for text in results.values())
    assert any("12:00 in" in text for text in results.values())


def test_forced_tool_choice_in_thinking_mode_is_refused_before_sending(emulator: Any) -> None:
    session = session_for(emulator)
    before = len(emulator.requests)
    with pytest.raises(ConfigError, match="tool_choice may only be 'auto' or 'none'"):
        session.ask("weather?", tools=[get_weather], tool_choice="required")
    assert len(emulator.requests) == before
    reply = session.ask("weather in Rome?", tools=[get_weather], tool_choice="required", thinking=False)
    assert reply.content
