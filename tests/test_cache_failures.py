"""The reply cache can never break or stall a cell (issue #13).

A read-only place, a file where the directory should be, a lock another process holds: the cache turns
itself off with one warning and every ask still works; no cache operation waits on a lock for more than
about 100 ms (SQLite's busy timeout), so neither a cell nor a batch's loop stalls.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_lock import lock_held

from deepseek_magic import Session, Settings
from deepseek_magic.client.cache import BUSY_TIMEOUT, ReplyCache
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread

KEY = "sk-emulator"


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


def unwritable_dir(tmp_path: Path) -> Path:
    """A cache directory that cannot be written: read-only by mode, or (as root, who ignores modes) under /sys."""
    if os.geteuid() == 0:
        return Path("/sys/deepseek-magic-cache-test")  # a read-only system filesystem: mkdir is refused
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "cache"


def reply() -> Reply:
    return Reply(content="an answer", finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=2))


def test_a_file_in_the_way_turns_the_cache_off_with_one_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("I am a file")
    with pytest.warns(RuntimeWarning, match="reply cache .* is off") as caught:
        cache = ReplyCache(blocker / "replies.sqlite")
        cache.put("k", reply())
        assert cache.get("k") is None and len(cache) == 0 and "k" not in cache
        cache.put("k2", reply())
    assert len(caught) == 1, "one warning, not one per operation"
    assert cache.off is not None


def test_an_unwritable_directory_turns_the_cache_off(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="is off"):
        cache = ReplyCache(unwritable_dir(tmp_path) / "replies.sqlite")
    assert cache.off is not None
    cache.put("k", reply())
    assert cache.get("k") is None


def test_asking_works_with_a_broken_cache(emu: RunningEmulator, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.warns(RuntimeWarning):
        cache = ReplyCache(blocker / "replies.sqlite")
    with Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY)) as session, warnings.catch_warnings():
        warnings.simplefilter("error")  # no further warning from a cache already off
        first = session.ask("Name three primes", key="a", cache=cache)
        again = session.ask("Name three primes", key="a", cache=cache)
    assert first.content and again.content and not again.cached


def test_a_lock_held_elsewhere_costs_a_write_about_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "replies.sqlite"
    cache = ReplyCache(path)
    cache.put("before", reply())
    with lock_held(path):
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match="database is locked"):
            cache.put("during", reply())
        waited = time.monotonic() - started
        assert waited < 20 * BUSY_TIMEOUT, f"a write waited {waited:.2f} s for the lock"
        assert cache.off is not None
        started = time.monotonic()
        for number in range(20):  # off now: each operation returns at once
            cache.put(f"k{number}", reply())
            assert cache.get(f"k{number}") is None
        assert time.monotonic() - started < 1.0


def test_a_batch_does_not_stall_on_a_held_lock(emu: RunningEmulator, tmp_path: Path) -> None:
    path = tmp_path / "cache" / "replies.sqlite"
    cache = ReplyCache(path)
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY))
    with lock_held(path):
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match="is off"):
            frame = session.batch([f"row {n}" for n in range(12)], "Is {item} prime?", cache=cache, concurrency=4)
        assert time.monotonic() - started < 10.0
    assert frame["error"].isna().all() and frame["reply"].str.len().gt(0).all()
