"""Runware's native task API: request bodies, the three delivery methods, errors, limits.

Everything but the pure body-building tests goes through the emulator over real
HTTP, at the Runware route (``POST /v1``) the provider reaches from the
emulator's root URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import deepseek_magic.client.flow as client_module
import deepseek_magic.client.sync as sync_module
from deepseek_magic import Session, providers
from deepseek_magic.client import AsyncChatClient, ChatClient, StreamDecoder
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import (
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    InsufficientBalanceError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    StreamInterrupted,
)
from deepseek_magic.core.events import Accumulator, ContentDelta, Event, Finish, ReasoningDelta, ResponseMeta, Usage
from deepseek_magic.providers import ChatRequest, get_provider
from deepseek_magic.providers.runware import RUNWARE, RunwareProvider, task_url

KEY = "sk-emulator"
ASK = [{"role": "user", "content": "Name three prime numbers."}]
ASYNC = dataclasses.replace(RUNWARE, delivery="async")


@pytest.fixture
def client() -> Iterator[ChatClient]:
    with ChatClient() as chat_client:
        yield chat_client


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short pauses between polls so async tests take milliseconds, not seconds."""
    monkeypatch.setattr(client_module, "POLL_FIRST", 0.01)
    monkeypatch.setattr(client_module, "POLL_MAX", 0.05)


@pytest.fixture
def async_delivery(monkeypatch: pytest.MonkeyPatch, fast_polls: None) -> None:
    """Select async delivery the way the provider docstring describes."""
    monkeypatch.setitem(providers._cache, "runware", ASYNC)


def settings(emu: Any, *, fault: str | None = None, **options: Any) -> Settings:
    options.setdefault("api_key", KEY)
    options.setdefault("backoff_base", 0.01)
    headers = {"X-Emulator-Fault": fault} if fault else {}
    return Settings.build(provider="runware", base_url=emu.base_url, extra_headers=headers, **options)


def request(emu: Any, messages: list[dict[str, Any]] | None = None, **options: Any) -> ChatRequest:
    tools = options.pop("tools", None)
    tool_choice = options.pop("tool_choice", None)
    return ChatRequest(messages or ASK, settings(emu, **options), tools, tool_choice)


def tasks(emu: Any, since: int) -> list[Any]:
    """Bodies the emulator recorded at the Runware endpoint since ``since``."""
    return [r.body for r in emu.requests[since:] if r.path == "/v1"]


def body(messages: list[dict[str, Any]] | None = None, **options: Any) -> dict[str, Any]:
    """The task the provider would send, built without I/O."""
    tools = options.pop("tools", None)
    tool_choice = options.pop("tool_choice", None)
    call = RUNWARE.prepare(
        ChatRequest(messages or ASK, Settings.build(provider="runware", **options), tools, tool_choice)
    )
    assert isinstance(call.body, list) and len(call.body) == 1
    task: dict[str, Any] = call.body[0]
    return task


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


# ---------------------------------------------------------------------------- request bodies


def test_registered_under_runware() -> None:
    provider = get_provider("runware")
    assert provider is RUNWARE or isinstance(provider, RunwareProvider)
    assert (provider.name, provider.display_name) == ("runware", "Runware")


def test_request_body_is_exactly_the_documented_task(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    messages = [{"role": "system", "content": "Be brief."}, *ASK]
    options = {"model": "deepseek-v4-pro", "thinking": True, "effort": "max", "temperature": 0.7, "top_p": 0.9}
    reply = client.chat(request(emulator, messages, stream=False, max_tokens=4096, stop=["END"], seed=7, **options))
    [sent] = tasks(emulator, before)
    assert isinstance(sent, list) and len(sent) == 1
    task = sent[0]
    assert is_uuid4(task["taskUUID"]) and reply.id == task["taskUUID"]
    assert task == {
        "taskType": "textInference",
        "taskUUID": task["taskUUID"],
        "model": "deepseek:v4@pro",
        "deliveryMethod": "sync",
        "messages": [{"role": "user", "content": "Name three prime numbers."}],
        "settings": {
            "systemPrompt": "Be brief.",
            "maxTokens": 4096,
            "temperature": 0.7,
            "topP": 0.9,
            "stopSequences": ["END"],
            "thinkingLevel": "max",
        },
        "seed": 7,
        "includeCost": True,
        "includeUsage": True,
    }
    headers = emulator.requests[-1].headers
    assert headers["accept"] == "application/json" and "authorization" not in headers


def test_each_request_gets_a_fresh_uuid4(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    first = client.chat(request(emulator, seed=1))
    second = client.chat(request(emulator, seed=1))
    ids = [sent[0]["taskUUID"] for sent in tasks(emulator, before)]
    assert len(set(ids)) == 2 and all(is_uuid4(i) for i in ids)
    assert [first.id, second.id] == ids
    assert first.content == second.content, "same request, same emulated reply"


@pytest.mark.parametrize(
    ("model", "air"),
    [
        ("deepseek-v4-pro", "deepseek:v4@pro"),
        ("deepseek-v4-flash", "deepseek:v4@flash"),
        ("deepseek:v4@pro", "deepseek:v4@pro"),
        ("vendor:custom@1", "vendor:custom@1"),
    ],
)
def test_friendly_names_become_air_ids_and_others_pass_through(model: str, air: str) -> None:
    assert body(model=model)["model"] == air


@pytest.mark.parametrize(
    ("thinking", "effort", "level"),
    [
        (None, None, None),
        (False, None, "none"),
        (False, "max", "none"),
        (True, None, "high"),
        (None, "low", "high"),
        (None, "medium", "high"),
        (True, "high", "high"),
        (None, "max", "max"),
    ],
)
def test_thinking_level_mapping(thinking: bool | None, effort: str | None, level: str | None) -> None:
    sent = body(thinking=thinking, effort=effort).get("settings", {})
    assert sent.get("thinkingLevel") == level


def test_endpoint_rule() -> None:
    assert task_url(Settings.build(provider="runware")) == "https://api.runware.ai/v1"
    assert task_url(Settings.build(provider="runware", base_url="https://proxy.example/v1")) == (
        "https://proxy.example/v1"
    )
    assert task_url(Settings.build(provider="runware", base_url="http://127.0.0.1:9/")) == "http://127.0.0.1:9/v1"
    call = RUNWARE.prepare(ChatRequest(ASK, Settings.build(provider="runware", stream=True)))
    assert call.urls == ("https://api.runware.ai/v1",) and call.stream
    assert call.headers["Accept"] == "text/event-stream" and call.body[0]["deliveryMethod"] == "stream"


def test_history_and_tools_take_runware_native_shapes() -> None:
    history = [
        {"role": "system", "content": "One."},
        {"role": "developer", "content": "Two."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "need a tool",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny.", "reasoning_content": ""},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]
    tools = [WEATHER, {"type": "search"}, {"type": "codeInterpreter"}]
    task = body(history, tools=tools, tool_choice="auto", thinking=False)
    assert task["settings"]["systemPrompt"] == "One.\n\nTwo."
    assert task["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tools": [{"id": "c1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "tool", "id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert task["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "schema": WEATHER["function"]["parameters"],
        },
        {"type": "search"},
        {"type": "codeInterpreter"},
    ]
    assert task["toolChoice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    assert body(tools=[WEATHER], tool_choice=choice, thinking=False)["toolChoice"] == expected


def test_json_mode_sets_output_format_only_where_runware_has_it() -> None:
    assert body(json_mode=True, model="deepseek-v4-flash")["outputFormat"] == "JSON"
    assert "outputFormat" not in body(json_mode=True, model="deepseek-v4-pro")
    assert body(n=3, stream=False)["numberResults"] == 3


# ------------------------------------------------------------------- limits, before sending


@pytest.mark.parametrize(
    ("messages", "options", "words"),
    [
        (None, {"max_tokens": 100_001}, "max_tokens up to 100000"),
        (None, {"stop": ["a", "b", "c", "d", "e", "f"]}, "at most 5 stop sequences"),
        (None, {"n": 5, "stream": False}, "between 1 and 4"),
        (None, {"n": 2, "stream": True}, "cannot stream more than one result"),
        (None, {"logprobs": True}, "no logprobs"),
        (None, {"logit_bias": {"1": 1.0}}, "no logit_bias"),
        ([*ASK, {"role": "assistant", "content": "Sure"}], {}, "last message to be a user message"),
        ([{"role": "system", "content": "x"}], {}, "last message to be a user message"),
        (None, {"tools": [WEATHER], "tool_choice": "required", "thinking": True}, "thinking mode tool_choice"),
        (None, {"tools": [WEATHER], "tool_choice": {"function": {"name": "nope"}}, "thinking": False}, "'nope'"),
        (None, {"tool_choice": "required"}, "no tools were given"),
        (None, {"tools": [{"type": "retrieval"}]}, "unknown tool type"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], {}, "only text"),
    ],
)
def test_limits_are_enforced_before_anything_is_sent(
    emulator: Any, client: ChatClient, messages: list[dict[str, Any]] | None, options: dict[str, Any], words: str
) -> None:
    before = len(emulator.requests)
    with pytest.raises(ConfigError, match=words):
        client.chat(request(emulator, messages, **options))
    assert len(emulator.requests) == before, "nothing may reach the server"


def test_last_message_error_is_clear() -> None:
    with pytest.raises(ConfigError) as info:
        body([*ASK, {"role": "tool", "tool_call_id": "c1", "content": "42"}])
    assert str(info.value) == "Runware needs the last message to be a user message (the last one is 'tool')"


# ------------------------------------------------------------------- replies in every mode


def test_stream_sync_and_async_give_the_same_reply(emulator: Any, client: ChatClient, fast_polls: None) -> None:
    before = len(emulator.requests)
    streamed = client.chat(request(emulator, thinking=True, seed=3))
    whole = client.chat(request(emulator, thinking=True, seed=3, stream=False))
    providers._cache["runware"] = ASYNC
    try:
        polled = client.chat(request(emulator, thinking=True, seed=3))
    finally:
        providers._cache["runware"] = RUNWARE
    for reply in (streamed, whole, polled):
        assert reply.content.startswith("[emulated]") and "deepseek:v4@flash" in reply.content
        assert reply.reasoning and reply.finish_reason == "stop" and not reply.partial
        assert reply.usage is not None and reply.usage.cost is not None and reply.usage.cost > 0
        assert reply.usage.reasoning_tokens > 0
        assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    sent = tasks(emulator, before)
    ids = [s[0]["taskUUID"] for s in sent if s[0]["taskType"] == "textInference"]
    assert [streamed.id, whole.id, polled.id] == ids
    normalized = [dataclasses.replace(r, id=None) for r in (streamed, whole, polled)]
    assert normalized[0] == normalized[1] == normalized[2]


def test_stream_events_are_normalized_in_order(emulator: Any, client: ChatClient) -> None:
    seen: list[Event] = []
    reply = client.chat(request(emulator, thinking=True), on_event=seen.append)
    assert isinstance(seen[0], ResponseMeta) and seen[0].id == reply.id
    kinds = [type(e) for e in seen if isinstance(e, (ReasoningDelta, ContentDelta))]
    assert kinds.index(ContentDelta) > 0 and ReasoningDelta not in kinds[kinds.index(ContentDelta) :]
    assert isinstance(seen[-2], Finish) and isinstance(seen[-1], Usage)
    assert emulator.requests[-1].headers["accept"] == "text/event-stream"


def test_thinking_off_sends_none_and_has_no_reasoning(emulator: Any, client: ChatClient) -> None:
    reply = client.chat(request(emulator, thinking=False))
    assert reply.content and reply.reasoning == "" and reply.usage is not None and reply.usage.reasoning_tokens == 0
    assert emulator.requests[-1].body[0]["settings"] == {"thinkingLevel": "none"}


def test_async_polls_get_response_until_success(emulator: Any, client: ChatClient, async_delivery: None) -> None:
    before = len(emulator.requests)
    reply = client.chat(request(emulator, thinking=True))
    sent = tasks(emulator, before)
    task_uuid = sent[0][0]["taskUUID"]
    assert sent[0][0]["deliveryMethod"] == "async" and reply.id == task_uuid
    polls = sent[1:]
    assert len(polls) == 3, "the emulator answers 'processing' twice, then the result"
    assert all(p == [{"taskType": "getResponse", "taskUUID": task_uuid}] for p in polls)
    assert reply.content and reply.reasoning and reply.usage is not None and reply.usage.cost


def test_async_wait_is_bounded_by_read_timeout(
    emulator: Any, client: ChatClient, async_delivery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that moves only when the client pauses: the pauses and the polls can be counted exactly.
    # Binary fractions keep the arithmetic exact.
    monkeypatch.setattr(client_module, "POLL_FIRST", 0.125)
    monkeypatch.setattr(client_module, "POLL_MAX", 0.5)
    now = [1000.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    fake = types.SimpleNamespace(monotonic=lambda: now[0], time=time.time, sleep=sleep)
    monkeypatch.setattr(client_module, "time", fake)  # the flow reads the clock
    monkeypatch.setattr(sync_module, "time", fake)  # the sync loop performs the pauses
    before = len(emulator.requests)
    with pytest.raises(APITimeoutError, match=r"Runware had not finished the task after 2 s of polling"):
        client.chat(request(emulator, fault="stall=5", read_timeout=2))
    # Growing by 1.5x up to 0.5 s, the last pause cut to what is left of the 2 s budget, then no more.
    assert pauses == [0.125, 0.1875, 0.28125, 0.421875, 0.5, 0.484375]
    sent = tasks(emulator, before)
    assert len(sent) == 1 + len(pauses), "the task, then one poll after each pause"
    assert all(body[0]["taskType"] == "getResponse" for body in sent[1:])


def test_async_task_error_becomes_stream_interrupted(emulator: Any, client: ChatClient, async_delivery: None) -> None:
    with pytest.raises(StreamInterrupted, match="The provider timed out"):
        client.chat(request(emulator, fault="error_after=0"))


def test_interrupt_while_waiting_for_an_async_task(
    emulator: Any, client: ChatClient, async_delivery: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    fake_time = types.SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=sleep)
    monkeypatch.setattr(sync_module, "time", fake_time)  # the sync loop performs the pauses
    acc = Accumulator()
    with pytest.raises(KeyboardInterrupt):
        client.chat(request(emulator), accumulator=acc)
    assert acc.events_seen == 0 and acc.reply(partial=True).content == ""
    monkeypatch.setattr(sync_module, "time", time)
    assert client.chat(request(emulator)).content, "the client still works afterwards"


def test_several_results_without_streaming(emulator: Any, client: ChatClient) -> None:
    reply = client.chat(request(emulator, n=2, stream=False, thinking=False))
    assert len(reply.choices) == 2 and all(choice.content for choice in reply.choices)
    assert reply.choices[0].content != reply.choices[1].content
    single = client.chat(request(emulator, stream=False, thinking=False))
    assert reply.usage is not None and single.usage is not None
    assert reply.usage.prompt_tokens == 2 * single.usage.prompt_tokens, "usage and cost add up over results"


def test_async_with_several_results(emulator: Any, client: ChatClient, async_delivery: None) -> None:
    reply = client.chat(request(emulator, n=3, thinking=False))
    assert len(reply.choices) == 3 and all(choice.content for choice in reply.choices)


@pytest.mark.parametrize("stream", [True, False])
def test_tool_call_replies(emulator: Any, client: ChatClient, stream: bool) -> None:
    ask = [{"role": "user", "content": "Use get_weather for Paris please."}]
    reply = client.chat(request(emulator, ask, tools=[WEATHER, {"type": "search"}], stream=stream, thinking=False))
    assert reply.finish_reason == "tool_calls"
    [call] = reply.tool_calls
    assert call.name == "get_weather" and call.id and '"city"' in call.arguments
    sent = emulator.requests[-1].body[0]
    assert sent["tools"][1] == {"type": "search"} and "toolChoice" not in sent


def test_forced_tool_reaches_the_server_as_tool_choice(emulator: Any, client: ChatClient) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    reply = client.chat(request(emulator, tools=[WEATHER], tool_choice=choice, thinking=False, stream=False))
    assert [call.name for call in reply.tool_calls] == ["get_weather"]
    assert emulator.requests[-1].body[0]["toolChoice"] == {"type": "tool", "name": "get_weather"}


def test_session_ask_keeps_history(emulator: Any) -> None:
    before = len(emulator.requests)
    session = Session("rw", settings=settings(emulator), system="Be brief.")
    first = session.ask("Remember the word tangerine.", thinking=True)
    second = session.ask("Which word did I ask you to remember?")
    assert first.content and "tangerine" in second.content, "the earlier turn is quoted back"
    sent = [body[0] for body in tasks(emulator, before)]
    assert sent[1]["settings"]["systemPrompt"] == "Be brief."
    assert sent[1]["messages"] == [
        {"role": "user", "content": "Remember the word tangerine."},
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": "Which word did I ask you to remember?"},
    ]
    assert session.usage.cost is not None and session.usage.cost > 0


def test_async_client_streams_and_polls(emulator: Any, monkeypatch: pytest.MonkeyPatch, fast_polls: None) -> None:
    async def run() -> list[str]:
        async with AsyncChatClient() as async_client:
            streamed = await async_client.chat(request(emulator, seed=4))
            monkeypatch.setitem(providers._cache, "runware", ASYNC)
            polled = await async_client.chat(request(emulator, seed=4))
            with pytest.raises(APITimeoutError):
                await async_client.chat(request(emulator, fault="stall=5", read_timeout=0.3))
        return [streamed.content, polled.content]

    streamed, polled = asyncio.run(run())
    assert streamed and streamed == polled


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, InvalidRequestError, "invalidRequest"),
        (401, AuthenticationError, "invalidApiKey"),
        (402, InsufficientBalanceError, "insufficientCredits"),
        (429, RateLimitError, "queueCapacityExceeded"),
        (500, ServerError, "internalServerError"),
        (503, ServerError, "capacityConstraint"),
    ],
)
def test_error_envelopes_become_typed_errors(
    emulator: Any, client: ChatClient, status: int, error_type: type, code: str
) -> None:
    with pytest.raises(error_type) as info:
        client.chat(request(emulator, fault=f"status={status}", max_retries=0))
    error = info.value
    assert error.status_code == status and error.code == code
    assert f"Runware, HTTP {status}" in str(error) and error.server_message in str(error)


def test_wrong_key_is_401_and_never_echoed(emulator: Any, client: ChatClient) -> None:
    wrong = "sk-wrong-canary-1234567890"
    with pytest.raises(AuthenticationError) as info:
        client.chat(request(emulator, api_key=wrong))
    assert wrong not in str(info.value) and info.value.code == "invalidApiKey"


def test_missing_key_names_runware_variable(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(ConfigError, match="no API key for Runware: set RUNWARE_API_KEY"):
        client.chat(ChatRequest(ASK, Settings.build(provider="runware", base_url=emulator.base_url)))


def test_server_validation_reaches_the_client_as_invalid_request(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.chat(request(emulator, model="deepseek-v5-ultra"))
    assert info.value.code == "invalidModel" and info.value.param == "model"


def test_retries_transient_errors_with_a_new_attempt(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    emulator.config.faults.append("status=503")
    reply = client.chat(request(emulator, max_retries=1))
    assert reply.content and len(tasks(emulator, before)) == 2


def test_in_stream_error_keeps_the_partial_reply(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(StreamInterrupted, match="reported an error mid-reply: The provider timed out") as info:
        client.chat(request(emulator, fault="error_after=8", thinking=True))
    partial = info.value.partial
    assert partial is not None and partial.partial and partial.reasoning


def test_drop_mid_stream_keeps_the_partial_and_is_not_resent(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    with pytest.raises(StreamInterrupted, match="partial reply is kept") as info:
        client.chat(request(emulator, fault="drop_after=6", thinking=True, max_retries=3))
    assert info.value.partial is not None and info.value.partial.reasoning
    assert len(tasks(emulator, before)) == 1


def test_sync_task_failure_is_a_server_error(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(ServerError, match="The provider timed out") as info:
        client.chat(request(emulator, fault="error_after=0", stream=False, max_retries=0))
    assert info.value.code == "timeoutProvider"


# --------------------------------------------------------------- the emulator, raw HTTP


def raw_task(**fields: Any) -> dict[str, Any]:
    task = {
        "taskType": "textInference",
        "taskUUID": str(uuid.uuid4()),
        "model": "deepseek:v4@flash",
        "deliveryMethod": "sync",
        "messages": [{"role": "user", "content": "hi"}],
    }
    task.update(fields)
    return task


@pytest.mark.parametrize(
    ("task", "code", "parameter"),
    [
        (raw_task(taskUUID="not-a-uuid"), "invalidTaskUUID", "taskUUID"),
        (raw_task(taskUUID=str(uuid.uuid1())), "invalidTaskUUID", "taskUUID"),
        (raw_task(model="deepseek-v4-flash"), "invalidModel", "model"),
        (raw_task(settings={"maxTokens": 100_001}), "invalidMaxTokens", "settings.maxTokens"),
        (raw_task(settings={"stopSequences": list("abcdef")}), "invalidStopSequences", "settings.stopSequences"),
        (raw_task(settings={"thinkingLevel": "ultra"}), "invalidThinkingLevel", "settings.thinkingLevel"),
        (raw_task(numberResults=5), "invalidNumberResults", "numberResults"),
        (raw_task(numberResults=2, deliveryMethod="stream"), "invalidNumberResults", "numberResults"),
        (raw_task(messages=[{"role": "system", "content": "x"}]), "invalidMessages", "messages[0].role"),
        (
            raw_task(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]),
            "invalidMessages",
            "messages",
        ),
        (raw_task(tools=[{"type": "function", "name": "bad name!"}]), "invalidTools", "tools"),
        (raw_task(tools=[{"type": "search"}], toolChoice={"type": "any"}), "invalidToolChoice", "toolChoice"),
        (raw_task(model="deepseek:v4@pro", outputFormat="JSON"), "invalidOutputFormat", "outputFormat"),
        ({"taskType": "imageInference", "taskUUID": str(uuid.uuid4())}, "invalidTaskType", "taskType"),
        ({"taskType": "getResponse", "taskUUID": str(uuid.uuid4())}, "taskNotFound", "taskUUID"),
    ],
)
def test_emulator_validates_tasks(emulator: Any, task: dict[str, Any], code: str, parameter: str) -> None:
    answer = httpx.post(f"{emulator.base_url}/v1", json=[task], headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert (error["code"], error["parameter"]) == (code, parameter) and error["message"]


def test_emulator_refuses_a_reused_task_uuid_and_accepts_the_auth_task(emulator: Any) -> None:
    task = raw_task()
    auth = {"taskType": "authentication", "apiKey": KEY}
    first = httpx.post(f"{emulator.base_url}/v1", json=[auth, task])
    assert first.status_code == 200 and first.json()["data"][0]["taskUUID"] == task["taskUUID"]
    again = httpx.post(f"{emulator.base_url}/v1", json=[auth, task])
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "duplicateTaskUUID"
    anonymous = httpx.post(f"{emulator.base_url}/v1", json=[raw_task()])
    assert anonymous.status_code == 401 and anonymous.json()["errors"][0]["code"] == "invalidApiKey"


def test_emulator_stream_wire_format(emulator: Any) -> None:
    task = raw_task(deliveryMethod="stream", settings={"thinkingLevel": "high"}, includeCost=True, includeUsage=True)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", f"{emulator.base_url}/v1", json=[task], headers=headers) as answer:
        lines = [line for line in answer.iter_lines() if line]
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert list(chunks[0]) == ["taskUUID", "taskType", "delta", "finishReason"]
    assert chunks[0]["delta"].keys() == {"reasoningContent"} and chunks[0]["finishReason"] is None
    final = chunks[-1]
    assert final["delta"] == {} and final["finishReason"] == "stop"
    assert set(final["usage"]) == {"promptTokens", "completionTokens", "totalTokens", "thinkingTokens"}
    assert isinstance(final["cost"], float)


# ------------------------------------------------------------------ lenient stream parsing


def decode(*payloads: str) -> list[Event]:
    decoder = StreamDecoder(RUNWARE)
    events = decoder.feed("".join(f"{p}\n\n" for p in payloads).encode())
    return events + decoder.flush()


def test_parser_reads_older_chunk_shapes_and_comments() -> None:
    events = decode(
        ": ping",
        'data: {"taskUUID":"t1","taskType":"textInference","delta":{"reasoningContent":"hm"}}',
        'data: {"taskUUID":"t1","delta":{"content":"A"}}',
        'data: {"taskUUID":"t1","choices":[{"delta":{"content":"B"}}]}',
        'data: {"data":{"taskUUID":"t1","delta":{"text":"C"},"finishReason":"tool_use",'
        '"usage":{"promptTokens":3,"completionTokens":2,"completionTokensDetails":{"reasoningTokens":1}},"cost":0.5}}',
        "data: [DONE]",
    )
    acc = Accumulator()
    for event in events:
        acc.add(event)
    reply = acc.reply()
    assert (reply.id, reply.reasoning, reply.content, reply.finish_reason) == ("t1", "hm", "ABC", "tool_calls")
    assert reply.usage == Usage(3, 2, 5, 0, 3, 1, 0.5)


def test_parser_reports_in_stream_errors() -> None:
    events = decode('data: {"errors":[{"code":"timeoutProvider","message":"The provider timed out."}]}')
    assert [type(e).__name__ for e in events] == ["Error"]
    assert getattr(events[0], "code", None) == "timeoutProvider"


def test_async_delivery_is_a_setting_and_a_cell_option(emulator: Any, testing_shell: Any, monkeypatch: Any) -> None:
    from deepseek_magic import Session

    settings = Settings.build(provider="runware", base_url=emulator.base_url, api_key="sk-emulator")
    sync_reply = Session(settings=settings.merged(stream=False)).ask("Hello async world")
    reply = Session(settings=settings.merged(async_delivery=True)).ask("Hello async world")
    tasks = [r.body for r in emulator.requests if r.path == "/v1" and isinstance(r.body, list)]
    assert any(t[0].get("deliveryMethod") == "async" for t in tasks)
    assert any(t[0].get("taskType") == "getResponse" for t in tasks)
    assert reply.content == sync_reply.content
    monkeypatch.setenv("RUNWARE_API_KEY", "sk-emulator")
    monkeypatch.setenv("RUNWARE_BASE_URL", emulator.base_url)
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    before = len(emulator.requests)
    try:
        testing_shell.run_cell("%%deepseek --provider runware --async-delivery --out polled\nHello async world")
    finally:
        testing_shell.run_line_magic("unload_ext", "deepseek_magic")
    after = [r.body[0] for r in emulator.requests[before:] if r.path == "/v1" and isinstance(r.body, list)]
    assert [t.get("deliveryMethod") for t in after if t.get("taskType") == "textInference"] == ["async"]
    assert any(t.get("taskType") == "getResponse" for t in after)
    assert testing_shell.user_ns["polled"].startswith("[emulated]")
