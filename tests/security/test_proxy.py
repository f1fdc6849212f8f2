"""Batch rows go through ``HTTP(S)_PROXY``/``NO_PROXY`` exactly as single requests do.

Before, the batch gave httpx its own transport, and httpx ignores the proxy
variables when a transport is passed in: rows went straight to the server
while single requests went through the proxy. Here the proxy is a closed
port, so "through the proxy" shows as a connection failure and "direct" as a
reply, for both paths alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import APIConnectionError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key="sk-emulator")) as emu:
        yield emu


@pytest.fixture
def session(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Session:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    settings = Settings.build(base_url=emulator.base_url, api_key="sk-emulator", max_retries=0, connect_timeout=2)
    return Session(settings=settings)


def test_with_a_proxy_both_paths_use_it(session: Session, emulator: Any) -> None:
    before = len(emulator.requests)
    with pytest.raises(APIConnectionError):
        session.ask("single")
    table = session.batch(["a", "b"], "Say {item}", confirmed=True, max_retries=0)
    assert table["error"].notna().all(), "every row went to the (unreachable) proxy too"
    assert len(emulator.requests) == before, "nothing reached the server directly"


def test_no_proxy_exempts_both_paths(session: Session, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert session.ask("single").content
    table = session.batch(["a", "b"], "Say {item}", confirmed=True)
    assert table["error"].isna().all() and table["reply"].str.len().gt(0).all()
