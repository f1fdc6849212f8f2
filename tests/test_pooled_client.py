"""The batch's loop over the lean pool (client/pooled.py): the same flow, the key dropped once sent, same failures."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from deepseek_magic.client.cache import cache_key
from deepseek_magic.client.flow import SendStep, prepare_call
from deepseek_magic.client.pooled import PooledChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import APIConnectionError, ConnectionLost
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.providers import ChatRequest, get_provider

KEY = "sk-emulator"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY, ttft=0.0)) as emu:
        yield emu


def request(base_url: str, **options: Any) -> ChatRequest:
    settings = Settings.build(base_url=base_url, api_key=KEY, stream=False, max_retries=0, **options)
    return ChatRequest([{"role": "user", "content": "Say hi"}], settings)


def test_a_reply_comes_back_as_with_httpx(emulator: Any) -> None:
    async def ask() -> Any:
        async with PooledChatClient(connections=2) as client:
            return await client.chat(request(emulator.base_url))

    reply = asyncio.run(ask())
    assert "Say hi" in reply.content and reply.usage is not None and reply.usage.completion_tokens > 0


def test_the_key_leaves_the_request_once_its_head_is_sent(emulator: Any) -> None:
    chat = request(emulator.base_url)
    prepared = prepare_call(get_provider("deepseek"), get_provider("deepseek").prepare(chat), chat.settings)

    async def send() -> tuple[int, list[str]]:
        async with PooledChatClient(connections=1) as client:
            opened: list[Any] = []
            answer = await client._open(SendStep(prepared, prepared.call.url), opened)
            connection = answer.raw._connection
            kept = {name: value for name, value in vars(connection).items() if name not in ("pool", "loop")}
            held = [repr(answer), repr(dict(answer.raw.headers)), repr(kept), repr(vars(client))]
            held.append(repr(vars(connection.pool)))
            answer.close()
            return answer.status_code, held

    status, held = asyncio.run(send())
    assert status == 200  # the server got the key
    assert all(KEY not in text for text in held), [text for text in held if KEY in text]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_could_not_reach() -> None:
    async def ask() -> Any:
        async with PooledChatClient(connections=1) as client:
            return await client.chat(request(f"http://127.0.0.1:{_closed_port()}"))

    with pytest.raises(APIConnectionError, match="could not reach") as caught:
        asyncio.run(ask())
    assert not isinstance(caught.value, ConnectionLost)  # nothing was sent: it may be sent again


def test_a_connection_closed_after_sending_is_never_sent_again(emulator: Any) -> None:
    chat = request(emulator.base_url, extra_headers={"X-Emulator-Fault": "close_after_request=1"})
    before = len(emulator.requests)

    async def ask() -> Any:
        async with PooledChatClient(connections=1) as client:
            return await client.chat(chat)

    with pytest.raises(ConnectionLost):
        asyncio.run(ask())
    assert len(emulator.requests) - before == 1


def test_proxies_come_from_the_environment_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    client = PooledChatClient()
    assert client._proxy_for("https://api.deepseek.com/chat/completions") == "http://proxy.example:3128"
    assert client._proxy_for("https://internal.example/v1/chat/completions") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert client._proxy_for("https://api.deepseek.com/other") == "http://proxy.example:3128"  # remembered


def test_a_request_builds_its_http_call_once_for_the_cache_key_and_the_send(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = request(emulator.base_url)
    provider = get_provider("deepseek")
    built: list[Any] = []
    prepare = type(provider).prepare

    def counting(self: Any, req: ChatRequest) -> Any:
        built.append(req)
        return prepare(self, req)

    monkeypatch.setattr(type(provider), "prepare", counting)
    key = cache_key(chat)

    async def ask() -> Any:
        async with PooledChatClient(connections=1) as client:
            return await client.chat(chat)

    assert asyncio.run(ask()).content and key == cache_key(chat)
    assert built == [chat]  # one build, shared by the key and the request that went out
    assert dataclasses.replace(chat, messages=[{"role": "user", "content": "other"}])._call is None
