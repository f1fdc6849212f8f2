"""The SQLite reply cache: what the key covers, what is stored, and surviving a damaged file."""

from __future__ import annotations

import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic.client.cache import ReplyCache, cache_key, default_cache_path
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.events import Reply, ToolCall, Usage
from deepseek_magic.providers import ChatRequest

ASK = [{"role": "user", "content": "Name three prime numbers."}]


def request(messages: list[dict[str, Any]] | None = None, **options: Any) -> ChatRequest:
    return ChatRequest(messages or ASK, Settings.build(**options))


def finished(content: str = "2, 3, 5") -> Reply:
    return Reply(
        content=content,
        reasoning="small primes",
        tool_calls=[ToolCall("call_1", "f", "{}")],
        usage=Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cache_miss_tokens=10, cost=0.001),
        finish_reason="stop",
        id="abc",
        model="deepseek-v4-flash",
    )


@pytest.fixture
def cache(tmp_path: Path) -> ReplyCache:
    return ReplyCache(tmp_path / "replies.sqlite")


def test_streamed_and_non_streamed_requests_share_a_key() -> None:
    assert cache_key(request(stream=True)) == cache_key(request(stream=False))


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.3},
        {"top_p": 0.5},
        {"model": "deepseek-v4-pro"},
        {"thinking": False},
        {"effort": "max"},
        {"max_tokens": 100},
        {"seed": 7},
        {"stop": ["END"]},
        {"json_mode": True},
        {"base_url": "https://proxy.example"},
        {"provider": "anyfast"},
        {"extra_headers": {"X-Trace": "1"}},
    ],
)
def test_every_parameter_is_part_of_the_key(change: dict[str, Any]) -> None:
    assert cache_key(request(**change)) != cache_key(request())


def test_the_messages_are_part_of_the_key() -> None:
    other = [{"role": "system", "content": "Be brief."}, *ASK]
    assert cache_key(request(other)) != cache_key(request())


def test_the_api_key_is_not_part_of_the_key_nor_stored(cache: ReplyCache) -> None:
    secret = "sk-very-secret-0123456789"
    key = cache_key(request(api_key=secret))
    assert key == cache_key(request(api_key="sk-another-key-98765"))
    cache.put(key, finished())
    cache.close()
    stored = b"".join(p.read_bytes() for p in cache.path.parent.iterdir())
    assert secret.encode() not in stored


def test_runware_task_uuid_and_delivery_do_not_change_the_key() -> None:
    first = request(provider="runware", stream=True)
    second = request(provider="runware", stream=False)
    assert cache_key(first) == cache_key(second)  # a fresh taskUUID each time, and another deliveryMethod


def test_put_then_get_round_trips_and_marks_cached(cache: ReplyCache) -> None:
    reply = finished()
    reply.data = {"not": "stored"}
    cache.put("k", reply)
    got = cache.get("k")
    assert got is not None and got.cached and not reply.cached
    assert (got.content, got.reasoning, got.usage, got.tool_calls) == (
        reply.content,
        reply.reasoning,
        reply.usage,
        reply.tool_calls,
    )
    assert got.data is None
    assert cache.get("missing") is None
    assert "k" in cache and "missing" not in cache and len(cache) == 1


@pytest.mark.parametrize("flag", ["partial", "interrupted", "error"])
def test_unfinished_or_failed_replies_are_never_stored(cache: ReplyCache, flag: str) -> None:
    reply = finished()
    setattr(reply, flag, "boom" if flag == "error" else True)
    cache.put("k", reply)
    assert cache.get("k") is None and len(cache) == 0


def test_clear_returns_how_many_were_removed(cache: ReplyCache) -> None:
    for number in range(3):
        cache.put(f"k{number}", finished(str(number)))
    assert len(cache) == 3
    assert cache.clear() == 3
    assert len(cache) == 0 and cache.clear() == 0


def test_a_damaged_file_is_moved_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(RuntimeWarning, match="could not be read"):
        cache = ReplyCache(path)
    cache.put("k", finished())
    assert cache.get("k") is not None
    assert list(tmp_path.glob("replies.sqlite.corrupt-*"))


def test_a_file_damaged_while_open_is_recreated_on_next_use(tmp_path: Path) -> None:
    path = tmp_path / "replies.sqlite"
    cache = ReplyCache(path)
    cache.put("k", finished())
    assert cache.get("k") is not None
    with sqlite3.connect(path) as other:  # another process checkpoints: the rows now live in the main file
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as handle:  # while `cache` is still open: keep the header page, wreck the table pages
        handle.seek(100)
        handle.write(b"\xff" * 8000)
    with pytest.warns(RuntimeWarning, match="could not be read") as caught:
        assert cache.get("k") is None
    assert len(caught) == 1, "one warning for one damaged file"
    assert len(list(tmp_path.glob("replies.sqlite.corrupt-*"))) == 1, "the damaged file is kept aside"
    cache.put("k2", finished())
    got = cache.get("k2")
    assert got is not None and got.content == "2, 3, 5" and len(cache) == 1


def test_an_unreadable_entry_is_a_miss(cache: ReplyCache) -> None:
    cache.put("k", finished())
    with sqlite3.connect(cache.path) as conn:
        conn.execute("UPDATE replies SET reply = 'not json' WHERE key = 'k'")
    assert cache.get("k") is None and len(cache) == 0


def test_concurrent_threads_share_one_cache(cache: ReplyCache) -> None:
    read_back: dict[str, str | None] = {}  # filled by the threads, checked here on the main thread

    def work(thread: int) -> None:
        for number in range(50):
            key = f"{thread}-{number}"
            cache.put(key, finished(key))
            got = cache.get(key)
            read_back[key] = None if got is None else got.content

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {f"{t}-{n}": f"{t}-{n}" for t in range(8) for n in range(50)}
    assert read_back == expected, "every thread read back exactly what it stored"
    assert len(cache) == 400


def test_wal_mode(cache: ReplyCache) -> None:
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEEPSEEK_MAGIC_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_path() == tmp_path / "mine" / "replies.sqlite"
    monkeypatch.delenv("DEEPSEEK_MAGIC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "deepseek-magic" / "replies.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_path() == Path.home() / ".cache" / "deepseek-magic" / "replies.sqlite"


def test_pickles_as_its_path(cache: ReplyCache) -> None:
    cache.put("k", finished())
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.path == cache.path and copy.get("k") is not None
