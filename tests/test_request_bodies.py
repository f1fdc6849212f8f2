"""Request bodies per provider, built without any I/O."""

from __future__ import annotations

from typing import Any

import pytest

from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.providers import ChatRequest, get_provider

USER = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}


def body(provider: str = "deepseek", messages: list[dict[str, Any]] | None = None, **options: Any) -> dict[str, Any]:
    tools = options.pop("tools", None)
    tool_choice = options.pop("tool_choice", None)
    settings = Settings.build(provider=provider, **options)
    request = ChatRequest(messages or USER, settings, tools=tools, tool_choice=tool_choice)
    return get_provider(provider).prepare(request).body  # type: ignore[no-any-return]


def urls(provider: str = "deepseek", messages: list[dict[str, Any]] | None = None, **options: Any) -> tuple[str, ...]:
    tools = options.pop("tools", None)
    settings = Settings.build(provider=provider, **options)
    return get_provider(provider).prepare(ChatRequest(messages or USER, settings, tools=tools)).urls


def test_minimal_streaming_body() -> None:
    assert body() == {
        "model": "deepseek-flash",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_non_stream_body_has_no_stream_options() -> None:
    assert body(stream=False) == {"model": "deepseek-flash", "messages": USER}


def test_thinking_and_effort_for_deepseek() -> None:
    assert body(thinking=False, effort="max")["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in body(thinking=False, effort="max")
    on = body(thinking=True, effort="medium")
    assert on["thinking"] == {"type": "enabled"} and on["reasoning_effort"] == "high"
    assert body(effort="max")["reasoning_effort"] == "max"
    assert "thinking" not in body(effort="low") and body(effort="low")["reasoning_effort"] == "low"


def test_anyfast_puts_effort_inside_thinking() -> None:
    assert body("anyfast", effort="medium")["thinking"] == {"type": "enabled", "reasoning_effort": "medium"}
    assert body("anyfast", thinking=True, effort="max")["thinking"] == {
        "type": "enabled",
        "reasoning_effort": "max",
    }
    assert "reasoning_effort" not in body("anyfast", effort="max")


def test_sampling_and_output_parameters() -> None:
    sent = body(temperature=0.2, top_p=0.9, max_tokens=50, stop=["END"], seed=7, json_mode=True, user_id="u-1")
    assert sent["temperature"] == 0.2 and sent["top_p"] == 0.9 and sent["max_tokens"] == 50
    assert sent["stop"] == ["END"] and sent["seed"] == 7 and sent["user_id"] == "u-1"
    assert sent["response_format"] == {"type": "json_object"}


def test_evolink_user_field_logprobs_and_n() -> None:
    sent = body("evolink", user_id="abc", logprobs=True, top_logprobs=3, n=2, logit_bias={"1": -5})
    assert sent["user"] == "abc" and "user_id" not in sent
    assert sent["logprobs"] is True and sent["top_logprobs"] == 3 and sent["n"] == 2
    assert sent["logit_bias"] == {"1": -5}


def test_base_urls_per_provider() -> None:
    assert urls() == ("https://api.deepseek.com/chat/completions",)
    assert urls("anyfast") == ("https://www.anyfast.ai/v1/chat/completions",)
    assert urls("evolink") == (
        "https://direct.evolink.ai/v1/chat/completions",
        "https://api.evolink.ai/v1/chat/completions",
    )
    assert urls(base_url="http://127.0.0.1:8123") == ("http://127.0.0.1:8123/chat/completions",)


def test_prefix_completion_and_strict_tools_use_the_beta_base() -> None:
    prefix = [*USER, {"role": "assistant", "content": "```python\n", "prefix": True}]
    assert urls(messages=prefix) == ("https://api.deepseek.com/beta/chat/completions",)
    strict = {**TOOL, "function": {**TOOL["function"], "strict": True}}
    assert urls(tools=[strict]) == ("https://api.deepseek.com/beta/chat/completions",)
    assert urls(messages=prefix, base_url="http://127.0.0.1:5/v1") == ("http://127.0.0.1:5/beta/chat/completions",)
    with pytest.raises(ConfigError, match="beta feature"):
        body("anyfast", messages=prefix)


def test_with_tools_every_assistant_turn_carries_reasoning_content() -> None:
    history = [
        *USER,
        {"role": "assistant", "content": "hello"},
        {"role": "assistant", "content": "x", "reasoning_content": "kept"},
        {"role": "user", "content": "weather?"},
    ]
    sent = body(messages=history, tools=[TOOL])
    assistants = [m for m in sent["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in assistants] == ["", "kept"]
    assert history[1] == {"role": "assistant", "content": "hello"}, "the caller's list is not mutated"
    no_tools = body(messages=history)
    assert "reasoning_content" not in no_tools["messages"][1]


def test_developer_role_is_sent_as_system() -> None:
    sent = body(messages=[{"role": "developer", "content": "be brief"}, *USER])
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_tool_choice_rules_in_thinking_mode() -> None:
    for choice in ("required", {"type": "function", "function": {"name": "weather"}}):
        with pytest.raises(ConfigError) as refused:
            body(tools=[TOOL], tool_choice=choice)
        assert str(refused.value) == (
            "in thinking mode tool_choice may only be 'auto' or 'none'; turn thinking off (--no-think) to force a tool"
        )
        assert body(tools=[TOOL], tool_choice=choice, thinking=False)["tool_choice"] == choice
    assert body(tools=[TOOL], tool_choice="auto")["tool_choice"] == "auto"


def test_tool_limits_are_checked_before_sending() -> None:
    with pytest.raises(ConfigError, match="at most 128"):
        body(tools=[TOOL] * 129)
    bad = {"type": "function", "function": {"name": "bad name!"}}
    with pytest.raises(ConfigError, match="tool name"):
        body(tools=[bad])


def test_empty_conversation_is_refused() -> None:
    with pytest.raises(ConfigError, match="no message"):
        get_provider("deepseek").prepare(ChatRequest([], Settings.build()))


def test_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="deepseek, anyfast, evolink"):
        get_provider("nope")


@pytest.mark.parametrize("provider", ["deepseek", "anyfast", "evolink"])
def test_accept_headers_ask_for_what_each_call_reads(provider: str) -> None:
    settings = Settings.build(provider=provider, base_url="http://127.0.0.1:9/v1")
    chosen = get_provider(provider)
    streamed = chosen.prepare(ChatRequest(USER, settings))
    whole = chosen.prepare(ChatRequest(USER, settings.merged(stream=False)))
    assert streamed.headers["Accept"] == "text/event-stream" and whole.headers["Accept"] == "application/json"
    models = chosen.models_call(settings)
    balance = chosen.balance_call(settings)
    assert models is not None and models.headers == {"Accept": "application/json"}
    assert models.urls == ("http://127.0.0.1:9/v1/models",)
    assert balance is not None and balance.headers == {"Accept": "application/json"}
    assert balance.urls == ("http://127.0.0.1:9/user/balance",)


def test_tool_choice_without_tools() -> None:
    for harmless in ("none", "auto"):
        assert "tool_choice" not in body(tool_choice=harmless)
    with pytest.raises(ConfigError) as refused:
        body(tool_choice={"type": "function", "function": {"name": "weather"}})
    assert str(refused.value) == "tool_choice names a tool but no tools were given"


def test_no_messages_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        get_provider("deepseek").prepare(ChatRequest([], Settings.build()))
    assert str(refused.value) == "there is no message to send"


@pytest.mark.parametrize(
    ("base_url", "plain", "beta"),
    [
        (
            "http://127.0.0.1:9/v1/",
            "http://127.0.0.1:9/v1/chat/completions",
            "http://127.0.0.1:9/beta/chat/completions",
        ),
        (
            "http://127.0.0.1:9/beta/",
            "http://127.0.0.1:9/beta/chat/completions",
            "http://127.0.0.1:9/beta/chat/completions",
        ),
        ("http://127.0.0.1:9", "http://127.0.0.1:9/chat/completions", "http://127.0.0.1:9/beta/chat/completions"),
    ],
)
def test_a_base_url_is_joined_without_doubled_slashes_or_segments(base_url: str, plain: str, beta: str) -> None:
    call = get_provider("deepseek").prepare(ChatRequest(USER, Settings.build(base_url=base_url)))
    assert call.method == "POST" and call.urls == (plain,)
    prefixed = [*USER, {"role": "assistant", "content": "```python\n", "prefix": True}]
    assert urls(base_url=base_url, messages=prefixed) == (beta,)
