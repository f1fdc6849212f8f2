"""The accumulator's assembly rules for cases the recordings do not cover."""

from __future__ import annotations

from deepseek_magic.core.events import (
    Accumulator,
    ContentDelta,
    Error,
    Finish,
    ReasoningDelta,
    Reply,
    ResponseMeta,
    ToolCallDelta,
    Usage,
)
from deepseek_magic.core.records import saved_reply
from deepseek_magic.providers import get_provider


def build(*events: object) -> Reply:
    acc = Accumulator()
    for event in events:
        acc.add(event)  # type: ignore[arg-type]
    return acc.reply()


def test_parallel_tool_calls_by_index() -> None:
    reply = build(
        ToolCallDelta(0, "call_00_a", "f", ""),
        ToolCallDelta(0, arguments='{"x":'),
        ToolCallDelta(0, arguments="1}"),
        ToolCallDelta(1, "call_01_b", "g", "{}"),
        Finish("tool_calls"),
    )
    assert [(c.id, c.name, c.arguments, c.index) for c in reply.tool_calls] == [
        ("call_00_a", "f", '{"x":1}', 0),
        ("call_01_b", "g", "{}", 1),
    ]


def test_second_call_reusing_index_zero_is_routed_by_its_new_id() -> None:
    """agno-agi/agno#8880: a V4 stream started a second call with index 0."""
    reply = build(
        ToolCallDelta(0, "call_00_a", "f", "{}"),
        ToolCallDelta(0, "call_01_b", "g", ""),
        ToolCallDelta(0, arguments='{"y": 2}'),
    )
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_00_a", "f", "{}"),
        ("call_01_b", "g", '{"y": 2}'),
    ]


def test_empty_id_and_name_on_continuations_do_not_overwrite() -> None:
    provider = get_provider("deepseek")
    parser = provider.stream_parser()
    events = []
    for data in (
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_00_x","function":{"name":"f","arguments":""}}]}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"","function":{"name":"","arguments":"{}"}}]}}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
    ):
        events += parser.feed(data)
    reply = build(*events)
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_00_x", "f", "{}")]


def test_several_choices_are_kept_apart() -> None:
    reply = build(
        ResponseMeta("id-1", "deepseek-v4-flash"),
        ContentDelta("A", 0),
        ContentDelta("B", 1),
        ContentDelta("a", 0),
        Finish("stop", choice=0),
        Finish("length", choice=1),
    )
    assert reply.content == "Aa"
    assert [(c.content, c.finish_reason, c.id) for c in reply.choices] == [
        ("Aa", "stop", "id-1"),
        ("B", "length", "id-1"),
    ]


def test_reply_round_trips_through_a_dict() -> None:
    reply = build(
        ResponseMeta("id", "m", "fp"),
        ReasoningDelta("think"),
        ContentDelta("answer"),
        ToolCallDelta(0, "call_00_a", "f", "{}"),
        Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5, reasoning_tokens=1),
        Finish("stop", matched_stop="END"),
    )
    again = saved_reply(reply.to_dict())
    assert again == reply
    assert again.matched_stop == "END"


def test_openai_style_usage_reads_cached_tokens() -> None:
    usage = Usage.from_wire(
        {"prompt_tokens": 100, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 64}}
    )
    assert (usage.cache_hit_tokens, usage.cache_miss_tokens, usage.total_tokens) == (64, 36, 110)
    assert (usage + usage).prompt_tokens == 200


def test_in_stream_error_and_partial_flags() -> None:
    acc = Accumulator()
    acc.add(ContentDelta("half"))
    acc.add(Error("overloaded", "503"))
    reply = acc.reply(partial=True)
    assert (reply.content, reply.partial, reply.error) == ("half", True, "overloaded")
    assert not acc.finished


def test_history_message_always_carries_reasoning_content() -> None:
    assert build(ContentDelta("x")).to_message() == {
        "role": "assistant",
        "content": "x",
        "reasoning_content": "",
    }


def test_insufficient_system_resource_is_kept_verbatim() -> None:
    parser = get_provider("deepseek").stream_parser()
    events = parser.feed(
        '{"id":"i","model":"m","choices":[{"index":0,"delta":{"content":"par"},'
        '"finish_reason":"insufficient_system_resource","matched_stop":null}]}'
    )
    assert build(*events).finish_reason == "insufficient_system_resource"


def test_a_reply_with_several_choices_round_trips() -> None:
    reply = build(ContentDelta("A", 0), ContentDelta("B", 1), Finish("stop", choice=0), Finish("stop", choice=1))
    assert reply.choices[0] is not reply
    again = saved_reply(reply.to_dict())
    assert [c.content for c in again.choices] == ["A", "B"]
