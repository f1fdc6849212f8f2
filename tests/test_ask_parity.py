"""``aask`` behaves like ``ask``: the same scenarios through both, against the emulator as a real HTTP server.

Each scenario runs on two fresh sessions, one with ``ask`` and one with
``aask`` (one event loop for the whole async run, as a notebook has), and the
replies, the requests the emulator recorded, the history and the usage must
be equal. Ids and timings the emulator makes up per request are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.core.errors import BudgetExceeded, DeepSeekError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread

KEY = "sk-parity"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture
def emu() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
def emu2() -> Iterator[Any]:
    """A second, fresh emulator: its context cache must not remember the first run's prompts."""
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


#: Each step: (text, ask options). A scenario is a list of steps on one session.
Step = tuple[str, dict[str, Any]]


def scenarios(cache: Callable[[], ReplyCache]) -> dict[str, list[Step]]:
    return {
        "plain": [("Name three primes", {}), ("And two more?", {})],
        "json": [("List two colours as JSON with a key colours", {"json": True})],
        "tools": [("Call get_weather for Paris.", {"tools": [get_weather]})],
        # The same cell run again (same key, so the same conversation): the second answer comes from the cache.
        "cached re-ask": [("Cache me", {"cache": cache(), "key": "c1"}), ("Cache me", {"cache": cache(), "key": "c1"})],
        "error": [("boom", {"extra_headers": {"X-Emulator-Fault": "status=400"}})],
        "budget": [("Too dear", {"max_tokens": 100_000})],
    }


def outcome(session: Session, result: Any, emu: Any, since: int) -> dict[str, Any]:
    requests = [(r.method, r.path, r.body) for r in emu.requests[since:]]
    turns = [turn.to_dict() for turn in session.turns]
    for turn in turns:  # made up per run: a random turn key, the clock, the emulator's reply ids
        turn.pop("created", None)
        turn.pop("key", None)
        for reply in [turn.get("reply"), *turn.get("intermediate", [])]:
            if isinstance(reply, dict):
                reply.pop("id", None)
    if isinstance(result, BaseException):
        shown: Any = (type(result).__name__, str(result))
    else:
        shown = (result.content, result.reasoning, result.finish_reason, result.cached, result.usage)
    return {"result": shown, "requests": requests, "turns": turns, "usage": session.usage, "cost": session.cost}


def run_sync(session: Session, steps: list[Step], seen: list[str]) -> Any:
    result: Any = None
    for text, options in steps:
        try:
            result = session.ask(text, on_retry=seen.append, **options)
        except DeepSeekError as exc:
            result = exc
    return result


async def run_async(session: Session, steps: list[Step], seen: list[str]) -> Any:
    result: Any = None
    for text, options in steps:
        try:
            result = await session.aask(text, on_retry=seen.append, **options)
        except DeepSeekError as exc:
            result = exc
    return result


@pytest.mark.parametrize("name", ["plain", "json", "tools", "cached re-ask", "error", "budget"])
def test_ask_and_aask_agree(emu: Any, emu2: Any, name: str, tmp_path: Path) -> None:
    results: list[dict[str, Any]] = []
    for mode, server in (("sync", emu), ("async", emu2)):
        db = tmp_path / f"{mode}.sqlite"
        steps = scenarios(lambda db=db: ReplyCache(db))[name]  # type: ignore[misc]
        settings = Settings.build(base_url=server.base_url, api_key=KEY, backoff_base=0.01, max_retries=0)
        seen: list[str] = []
        since = len(server.requests)
        session = Session(settings=settings, max_cost=0.01 if name == "budget" else None)
        result = run_sync(session, steps, seen) if mode == "sync" else asyncio.run(run_async(session, steps, seen))
        results.append({**outcome(session, result, server, since), "notices": seen})
    sync, async_ = results
    for field in sync:
        assert sync[field] == async_[field], field
    if name == "budget":
        assert sync["result"][0] == BudgetExceeded.__name__ and not sync["requests"]
    if name == "cached re-ask":
        assert len(sync["requests"]) == 1 and sync["result"][3] is True, "the second ask came from the cache"
    if name == "tools":
        assert len(sync["requests"]) == 2
    if name == "error":
        assert sync["result"][0] != "NoneType" and "400" in sync["result"][1]


def test_aask_reuses_one_client_per_event_loop(emu: Any) -> None:
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY))

    async def twice() -> bool:
        await session.aask("one")
        first = session.async_client
        await session.aask("two")
        return session.async_client is first

    assert asyncio.run(twice())
    assert len(session.turns) == 2
