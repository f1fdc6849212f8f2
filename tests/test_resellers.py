"""Anyfast and Evolink end to end through the emulator's reseller routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.client import ChatClient
from deepseek_magic.core.errors import AuthenticationError, ConfigError, InsufficientBalanceError, RateLimitError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.providers import ChatRequest

ASK = [{"role": "user", "content": "Describe the sea in two sentences."}]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig()) as emu:
        yield emu


def settings(emu: Any, provider: str, **options: Any) -> Settings:
    return Settings.build(provider=provider, base_url=f"{emu.base_url}/{provider}/v1", api_key="sk-emulator", **options)


def last(emu: Any) -> Any:
    return [r for r in emu.requests if r.path.endswith("/chat/completions")][-1]


@pytest.mark.parametrize("stream", [True, False])
def test_anyfast_usage_matched_stop_and_effort(emulator: Any, stream: bool) -> None:
    with ChatClient() as client:
        reply = client.chat(
            ChatRequest(ASK, settings(emulator, "anyfast", effort="max", stop=[".", "!"], stream=stream))
        )
    request = last(emulator)
    assert request.path == "/anyfast/v1/chat/completions"
    assert request.body["thinking"] == {"type": "enabled", "reasoning_effort": "max"}
    assert "reasoning_effort" not in request.body
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert reply.usage.cache_hit_tokens + reply.usage.cache_miss_tokens == reply.usage.prompt_tokens
    assert reply.finish_reason == "stop" and reply.matched_stop in (".", "!")


def test_anyfast_cache_hits_come_from_cached_tokens_only(emulator: Any) -> None:
    long = [{"role": "user", "content": "word " * 400}]
    with ChatClient() as client:
        client.chat(ChatRequest(long, settings(emulator, "anyfast")))
        again = client.chat(ChatRequest(long, settings(emulator, "anyfast")))
    assert again.usage is not None and again.usage.cache_hit_tokens > 0


@pytest.mark.parametrize("stream", [True, False])
def test_evolink_choices_logprobs_and_user(emulator: Any, stream: bool) -> None:
    options = {"n": 3, "logprobs": True, "top_logprobs": 2, "user_id": "analyst-7", "seed": 5, "thinking": False}
    with ChatClient() as client:
        reply = client.chat(ChatRequest(ASK, settings(emulator, "evolink", stream=stream, **options)))
    body = last(emulator).body
    assert body["n"] == 3 and body["user"] == "analyst-7" and body["top_logprobs"] == 2
    assert len(reply.choices) == 3 and all(choice.content for choice in reply.choices)
    assert reply.system_fingerprint == "fp_evolink_v4_20260402"
    assert reply.logprobs is not None and reply.logprobs["content"][0]["top_logprobs"]


def test_evolink_n_through_the_session_stores_every_choice(emulator: Any) -> None:
    session = Session(settings=settings(emulator, "evolink", n=2, thinking=False))
    reply = session.ask("Two taglines for a bakery.")
    assert [c.content for c in reply.choices] and len(reply.choices) == 2
    assert reply.content == reply.choices[0].content


@pytest.mark.parametrize("provider", ["anyfast", "evolink"])
@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (402, InsufficientBalanceError), (429, RateLimitError)]
)
def test_reseller_errors_map_to_the_same_types(emulator: Any, provider: str, status: int, error: type) -> None:
    bad = settings(emulator, provider, extra_headers={"X-Emulator-Fault": f"status={status}"}, max_retries=0)
    with ChatClient() as client, pytest.raises(error, match=provider.capitalize()):
        client.chat(ChatRequest(ASK, bad))


@pytest.mark.parametrize("provider", ["anyfast", "evolink"])
@pytest.mark.parametrize("stream", [True, False])
def test_replies_normalize_to_the_same_reply_as_deepseek(emulator: Any, provider: str, stream: bool) -> None:
    # The same model on both sides: DeepSeek still accepts the resellers' (legacy) name.
    direct = Settings.build(
        base_url=emulator.base_url, api_key="sk-emulator", seed=9, stream=stream, model="deepseek-v4-flash"
    )
    with ChatClient() as client:
        reference = client.chat(ChatRequest(ASK, direct))
        resold = client.chat(ChatRequest(ASK, settings(emulator, provider, seed=9, stream=stream)))
    assert (resold.content, resold.reasoning, resold.finish_reason) == (
        reference.content,
        reference.reasoning,
        reference.finish_reason,
    )
    assert resold.usage is not None and reference.usage is not None
    assert resold.usage.completion_tokens == reference.usage.completion_tokens


def test_limits_are_enforced_before_sending(emulator: Any) -> None:
    before = len(emulator.requests)
    for provider, options in (("evolink", {"n": 9}), ("anyfast", {"user_id": "no spaces please"})):
        with pytest.raises(ConfigError):
            settings(emulator, provider, **options)
    assert len(emulator.requests) == before


def test_models_listed_through_the_reseller_route(emulator: Any) -> None:
    with ChatClient() as client:
        assert "deepseek-v4-pro" in client.models(settings(emulator, "anyfast"))
        with pytest.raises(ConfigError, match="no balance endpoint"):
            client.balance(Settings.build(provider="anyfast", api_key="k"))


def test_matched_stop_and_capacity_finish_are_shown_in_the_footer() -> None:
    from deepseek_magic.core.events import Reply
    from deepseek_magic.ui.static import footer_text

    assert "at stop '.'" in footer_text(Reply(content="x", finish_reason="stop", matched_stop="."), None)
    capacity = footer_text(Reply(content="par", finish_reason="insufficient_system_resource"), None)
    assert "ran out of capacity" in capacity
