"""Every validation rule answers DeepSeek's 400 (or 413) with its envelope, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepseek_magic.core import limits
from deepseek_magic.emulator import EmulatorConfig

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
ASSISTANT_CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
}


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "deepseek-v4-flash", "messages": list(messages) or [{"role": "user", "content": "hi"}], **fields}


def assert_error(response: Any, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] is None
    assert text in error["message"], error["message"]


CASES: list[tuple[str, Any, str]] = [
    ("temperature", chat(temperature=2.5), "the valid range of temperature is [0, 2]"),
    ("temperature type", chat(temperature="hot"), 'temperature: invalid type: string "hot"'),
    ("top_p", chat(top_p=1.5), "the valid range of top_p is [0, 1]"),
    ("max_tokens low", chat(max_tokens=0), "the valid range of max_tokens is [1, 384000]"),
    ("max_tokens high", chat(max_tokens=limits.RANGES["max_tokens"][1] + 1), "max_tokens"),
    ("max_tokens float", chat(max_tokens=1.5), "max_tokens: invalid type: floating point"),
    ("top_logprobs", chat(logprobs=True, top_logprobs=21), "the valid range of top_logprobs is [0, 20]"),
    ("n", chat(n=9), "the valid range of n is [1, 8]"),
    ("frequency_penalty", chat(frequency_penalty=-3), "frequency_penalty"),
    ("stop count", chat(stop=[f"s{i}" for i in range(limits.MAX_STOP_SEQUENCES + 1)]), "stop"),
    ("stop type", chat(stop=[1]), "stop: invalid type"),
    ("tools count", chat(tools=[TOOL] * (limits.MAX_TOOLS + 1)), "tools takes at most 128"),
    (
        "tool name",
        chat(tools=[{"type": "function", "function": {"name": "bad name!"}}]),
        "tool name 'bad name!'",
    ),
    ("user_id pattern", chat(user_id="has space"), "user_id may only contain"),
    ("user_id length", chat(user_id="a" * (limits.USER_ID_MAX_LENGTH + 1)), "user_id must be at most 512"),
    ("logit_bias", chat(logit_bias={"42": 101}), "logit_bias values must be between -100 and 100"),
    (
        "reasoning pass-back",
        chat(
            {"role": "user", "content": "use lookup"},
            ASSISTANT_CALL,
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            tools=[TOOL],
        ),
        "The `reasoning_content` in the thinking mode must be passed back to the API.",
    ),
    (
        "pass-back for a turn without tool calls",
        chat(
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "use lookup"},
            tools=[TOOL],
        ),
        "The `reasoning_content` in the thinking mode must be passed back to the API.",
    ),
    (
        "tool_choice required",
        chat(tools=[TOOL], tool_choice="required"),
        "Thinking mode does not support this tool_choice",
    ),
    (
        "tool_choice named",
        chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "lookup"}}),
        "Thinking mode does not support this tool_choice",
    ),
    (
        "tool_choice unknown name",
        chat(
            tools=[TOOL],
            tool_choice={"type": "function", "function": {"name": "nope"}},
            thinking={"type": "disabled"},
        ),
        "`nope` is not in `tools`",
    ),
    (
        "duplicate tool_call_id",
        chat(
            {"role": "user", "content": "go"},
            {**ASSISTANT_CALL, "reasoning_content": ""},
            {"role": "tool", "tool_call_id": "call_1", "content": "1"},
            {"role": "tool", "tool_call_id": "call_1", "content": "2"},
        ),
        "Duplicate value for 'tool_call_id' of call_1 in message[3]",
    ),
    (
        "developer role",
        chat({"role": "system", "content": "s"}, {"role": "developer", "content": "d"}),
        "Failed to deserialize the JSON body into the target type: messages[1].role: unknown variant `developer`, "
        "expected one of `system`, `user`, `assistant`, `tool`",
    ),
    ("empty messages", {"model": "deepseek-v4-flash", "messages": []}, "messages"),
    ("missing messages", {"model": "deepseek-v4-flash"}, "missing field `messages`"),
    ("missing model", {"messages": [{"role": "user", "content": "x"}]}, "missing field `model`"),
    ("unknown model", chat(model="gpt-4o"), "Model Not Exist"),
    ("stream_options without stream", chat(stream_options={"include_usage": True}), "stream_options"),
    ("tool message without id", chat({"role": "tool", "content": "x"}), "missing field `tool_call_id`"),
    (
        "json mode without the word",
        chat({"role": "user", "content": "give me an object"}, response_format={"type": "json_object"}),
        "Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'.",
    ),
    ("json_schema format", chat(response_format={"type": "json_schema"}), "response_format"),
    ("effort", chat(reasoning_effort="extreme"), "reasoning_effort: unknown variant `extreme`"),
    ("thinking type", chat(thinking={"type": "sometimes"}), "thinking.type: unknown variant `sometimes`"),
    (
        "prefix outside beta",
        chat({"role": "user", "content": "x"}, {"role": "assistant", "content": "```", "prefix": True}),
        "beta",
    ),
    ("body is a list", [1, 2], "Failed to deserialize the JSON body"),
]


@pytest.mark.parametrize(("name", "body", "text"), CASES, ids=[case[0] for case in CASES])
def test_rule_answers_400(wire: Any, name: str, body: Any, text: str) -> None:
    assert_error(wire.post(body), 400, text)


def test_valid_neighbours_pass(wire: Any) -> None:
    """The same fields inside their ranges are accepted (guards against over-strict rules)."""
    ok = chat(
        temperature=2,
        top_p=0,
        max_tokens=5,
        n=1,
        stop=["x"] * limits.MAX_STOP_SEQUENCES,
        user_id="user_1-a",
        logit_bias={"1": -100},
        logprobs=True,
        top_logprobs=20,
    )
    assert wire.post(ok).status_code == 200
    echoed = chat(
        {"role": "user", "content": "use lookup"},
        {**ASSISTANT_CALL, "reasoning_content": ""},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        tools=[TOOL],
    )
    assert wire.post(echoed).status_code == 200
    no_thinking = chat(tools=[TOOL], tool_choice="required", thinking={"type": "disabled"})
    assert wire.post(no_thinking).json()["choices"][0]["finish_reason"] == "tool_calls"
    # Without tools, a missing reasoning_content is fine.
    plain = chat(
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}
    )
    assert wire.post(plain).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"\xff\xfe\x00garbage", b'{"model": "deepseek-v4-flash", "messages": [', b"[" * 100_000],
)
def test_garbage_body_is_a_400(wire: Any, raw: bytes) -> None:
    response = wire.http.post("/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "Failed to parse the request body as JSON")


def test_body_over_the_cap_is_a_413(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(max_body_bytes=2048))
    response = wire.post(chat({"role": "user", "content": "x" * 4096}))
    assert_error(response, 413, "Request body too large")
    assert wire.post(chat()).status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
field_values = st.dictionaries(
    st.sampled_from(
        [
            "model",
            "messages",
            "temperature",
            "max_tokens",
            "stop",
            "tools",
            "tool_choice",
            "thinking",
            "response_format",
            "stream",
            "stream_options",
            "n",
            "logit_bias",
            "user_id",
            "reasoning_effort",
        ]
    ),
    json_values,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", 3])},
    optional={
        "content": json_values,
        "tool_call_id": json_values,
        "tool_calls": json_values,
        "prefix": json_values,
        "reasoning_content": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=field_values,
    messages=st.lists(message, max_size=4),
    model=st.sampled_from(["deepseek-v4-flash", "deepseek-chat", "x"]),
)
def test_random_bodies_never_crash(wire: Any, fields: dict[str, Any], messages: list[Any], model: str) -> None:
    body = {"model": model, "messages": messages, **fields}
    response = wire.post(body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
