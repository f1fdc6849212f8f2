"""Every real DeepSeek recording decodes into the Reply the recording holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recordings import (
    Expected,
    as_sse,
    body_files,
    cassette_files,
    cassette_interactions,
    chunk_files,
    chunks,
    expected_from_body,
    expected_from_chunks,
    request_body,
    response_body,
)

from deepseek_magic.client import StreamDecoder
from deepseek_magic.core.events import Accumulator, Reply
from deepseek_magic.providers import get_provider

DEEPSEEK = get_provider("deepseek")


def decode_stream(data: bytes, cuts: list[int] | None = None) -> tuple[Reply, list[object]]:
    decoder = StreamDecoder(DEEPSEEK)
    acc = Accumulator()
    events: list[object] = []
    pieces = [data] if cuts is None else split_at(data, cuts)
    for piece in pieces:
        for event in decoder.feed(piece):
            acc.add(event)
            events.append(event)
    for event in decoder.flush():
        acc.add(event)
        events.append(event)
    assert decoder.done, "data: [DONE] must be recognised"
    return acc.reply(), events


def decode_body(body: dict[str, object]) -> Reply:
    acc = Accumulator()
    for event in DEEPSEEK.parse_body(body):
        acc.add(event)
    return acc.reply()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def assert_matches(reply: Reply, expected: Expected) -> None:
    assert reply.content == expected.content
    assert reply.reasoning == expected.reasoning
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == expected.tool_calls
    assert reply.finish_reason == expected.finish_reason
    assert reply.id == expected.id
    assert reply.model == expected.model
    usage = expected.usage
    assert usage is not None and reply.usage is not None
    assert reply.usage.prompt_tokens == usage["prompt_tokens"]
    assert reply.usage.completion_tokens == usage["completion_tokens"]
    assert reply.usage.total_tokens == usage["total_tokens"]
    details = usage.get("completion_tokens_details") or {}
    assert reply.usage.reasoning_tokens == details.get("reasoning_tokens", 0)
    hit = usage.get("prompt_cache_hit_tokens", (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
    assert reply.usage.cache_hit_tokens == hit
    assert reply.usage.cache_hit_tokens + reply.usage.cache_miss_tokens == usage["prompt_tokens"]


@pytest.mark.parametrize("path", chunk_files(), ids=lambda p: p.name)
def test_stream_recording_decodes_to_what_it_holds(path: Path) -> None:
    reply, _ = decode_stream(as_sse(path))
    assert_matches(reply, expected_from_chunks(chunks(path)))
    assert not reply.partial


@pytest.mark.parametrize("path", chunk_files(), ids=lambda p: p.name)
def test_crlf_framing_and_keepalives_change_nothing(path: Path) -> None:
    plain, plain_events = decode_stream(as_sse(path))
    framed, framed_events = decode_stream(as_sse(path, crlf=True, keepalives=True))
    assert framed_events == plain_events
    assert framed == plain


@pytest.mark.parametrize("path", body_files(), ids=lambda p: p.name)
def test_body_recording_decodes_to_what_it_holds(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    reply = decode_body(body)
    assert_matches(reply, expected_from_body(body))
    assert reply.system_fingerprint == body.get("system_fingerprint")


def test_known_facts_of_the_recordings() -> None:
    """Figures stated in SOURCES.md, checked independently of the reference reader."""
    from recordings import REAL_FIXTURES

    reasoning, _ = decode_stream(as_sse(REAL_FIXTURES / "deepseek-reasoning.chunks.txt"))
    assert reasoning.usage is not None and reasoning.usage.reasoning_tokens == 88
    assert reasoning.finish_reason == "stop" and "strawberry" in reasoning.content.lower()

    tool, _ = decode_stream(as_sse(REAL_FIXTURES / "deepseek-tool-call.chunks.txt"))
    assert [(c.name, json.loads(c.arguments)) for c in tool.tool_calls] == [("weather", {"location": "San Francisco"})]
    assert tool.tool_calls[0].id == "call_00_IhCAliIHtM9gKpgfqbBV9873"
    assert tool.usage is not None and tool.usage.cache_hit_tokens == 256
    assert tool.finish_reason == "tool_calls" and tool.content == ""

    cut, _ = decode_stream(as_sse(REAL_FIXTURES / "issue-19381-thinking-reasoning.chunks.txt"))
    assert cut.finish_reason == "length" and cut.content == "" and cut.reasoning == "We need"
    assert cut.reasoning_exhausted

    logprobs, _ = decode_stream(as_sse(REAL_FIXTURES / "issue-19377-logprobs.chunks.txt"))
    assert logprobs.logprobs is not None and logprobs.logprobs["content"][0]["token"] == "OK"

    body = decode_body(json.loads((REAL_FIXTURES / "deepseek-logprobs.json").read_text()))
    assert body.logprobs is not None
    assert [t["token"] for t in body.logprobs["reasoning"]] == ["Think"]
    assert [t["token"] for t in body.logprobs["content"]] == ["Answer"]


# ------------------------------------------------------------------ pydantic-ai cassettes


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: p.name)
def test_cassette_responses_decode(path: Path) -> None:
    interactions = list(cassette_interactions(path))
    assert interactions, f"{path.name} holds no interactions: nothing would be checked"
    for interaction in interactions:
        kind, body = response_body(interaction)
        if kind == "text":
            reply, _ = decode_stream(body.encode("utf-8"))
            items = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
            assert_matches(reply, expected_from_chunks(items))
        else:
            assert_matches(decode_body(body), expected_from_body(body))


def test_cassette_tool_loop_history_matches_what_deepseek_accepted() -> None:
    """The assistant turn we would send back equals the one the real server accepted."""
    from recordings import REAL_FIXTURES

    path = REAL_FIXTURES / "pydantic-ai" / "test_deepseek_deferred_capability_with_thinking.yaml"
    first, second = cassette_interactions(path)[:2]
    reply = decode_body(response_body(first)[1])
    echoed = next(m for m in request_body(second)["messages"] if m["role"] == "assistant")
    assert reply.to_message() == echoed


# ----------------------------------------------------------------- split anywhere


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_byte_split_gives_identical_events(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(chunk_files()), label="recording")
    wire = as_sse(path, crlf=data.draw(st.booleans(), label="crlf"), keepalives=data.draw(st.booleans(), label="ka"))
    _, whole = decode_stream(wire)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=40), label="cuts")
    _, split = decode_stream(wire, cuts)
    assert split == whole


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0), max_size=60))
def test_split_inside_multibyte_characters(cuts: list[int]) -> None:
    """deepseek-reasoning holds curly quotes: cuts inside them must not corrupt text."""
    from recordings import REAL_FIXTURES

    wire = as_sse(REAL_FIXTURES / "deepseek-reasoning.chunks.txt")
    multibyte = [i for i, b in enumerate(wire) if b >= 0x80]
    chosen = [multibyte[c % len(multibyte)] for c in cuts] if multibyte else []
    whole, _ = decode_stream(wire)
    split, _ = decode_stream(wire, chosen)
    assert split == whole
    assert "“" in whole.content
