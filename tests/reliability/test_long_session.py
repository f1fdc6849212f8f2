"""A session holding ~1M tokens of history (400 turns, 4M characters) stays usable.

Functional checks, with bounds generous enough never to flake: the next request is built from the
whole history without copying its text, save/load round-trips it exactly, and saving never holds a second
copy of the history. Speed targets and the exact figures live in
``benchmarks/long_session.py``.
"""

from __future__ import annotations

import gc
import random
import string
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session, Turn
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.providers import get_provider

TURNS = 400
CHARS = 10_000  # per turn: 30% prompt, 50% answer, 20% reasoning → 4M characters ≈ 1M tokens
SETTINGS = Settings(api_key="sk-long-session-test", base_url="http://127.0.0.1:9")


def build(turns: int = TURNS, chars: int = CHARS) -> Session:
    rng = random.Random(3)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(5_000)]
    source = " ".join(rng.choices(words, k=chars * 2))
    prompt, answer = int(chars * 0.3), int(chars * 0.5)
    reasoning = chars - prompt - answer

    def piece(index: int, size: int) -> str:  # a fresh string object each time, as replies would be
        start = (index * 7919) % (len(source) - size)
        return source[start : start + size]

    session = Session("long", settings=SETTINGS)
    for i in range(turns):
        reply = Reply(
            content=piece(3 * i, answer),
            reasoning=piece(3 * i + 1, reasoning),
            usage=Usage(prompt_tokens=1_000 + i * chars // 4, completion_tokens=chars // 5),
            finish_reason="stop",
            id=f"chatcmpl-{i}",
            model="deepseek-v4-flash",
        )
        session.turns.append(Turn(f"cell-{i}", piece(3 * i + 2, prompt), reply, model="deepseek-v4-flash"))
    return session


def traced(action: Callable[[], Any]) -> tuple[int, int, Any]:
    """(peak bytes allocated while ``action`` runs, bytes it left allocated, its result)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = action()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, current, result


@pytest.fixture(scope="module")
def long_session() -> tuple[Session, int]:
    """The session and the bytes its history occupies (measured by building it once under tracemalloc)."""
    _, history_bytes, _ = traced(build)
    session = build()
    assert sum(len(t.prompt) + len(t.reply.content) + len(t.reply.reasoning) for t in session.turns) == TURNS * CHARS
    return session, history_bytes


def test_the_next_request_carries_the_whole_history_without_copying_it(long_session: tuple[Session, int]) -> None:
    session, history_bytes = long_session

    def next_call() -> Any:
        request = session.exchange("And the next question?", key="cell-next").next_request()
        assert request is not None
        return get_provider("deepseek").prepare(request)

    peak, _, call = traced(next_call)
    messages = call.body["messages"]
    assert len(messages) == 2 * TURNS + 1
    assert messages[0] == {"role": "user", "content": session.turns[0].prompt}
    assert messages[-2]["content"] == session.turns[-1].reply.content
    assert messages[-1] == {"role": "user", "content": "And the next question?"}
    # The body refers to the stored text instead of copying it (its build time is measured in the benchmark).
    assert messages[0]["content"] is session.turns[0].prompt
    assert messages[-2]["content"] is session.turns[-1].reply.content
    assert peak < history_bytes / 2, f"building the next request allocated {peak:,} bytes at its peak"


def test_rerunning_a_cell_in_the_middle_sends_only_the_turns_before_it(long_session: tuple[Session, int]) -> None:
    session, _ = long_session
    request = session.exchange("Again", key="cell-200").next_request()
    assert request is not None
    assert len(request.messages) == 2 * 200 + 1


def test_save_holds_no_second_copy_and_load_round_trips(long_session: tuple[Session, int], tmp_path: Path) -> None:
    session, history_bytes = long_session
    path = tmp_path / "long.json"
    save_peak, _, _ = traced(lambda: session.save(path))
    assert path.stat().st_size > TURNS * CHARS
    assert (history_bytes + save_peak) / history_bytes < 1.5, (
        f"saving allocated {save_peak:,} bytes at its peak on top of a {history_bytes:,}-byte history"
    )
    loaded = Session.load(path, settings=SETTINGS)
    assert loaded.name == "long" and len(loaded.turns) == TURNS
    assert [t.to_dict() for t in loaded.turns] == [t.to_dict() for t in session.turns]
    request = loaded.exchange("After loading", key="cell-next").next_request()
    assert request is not None and len(request.messages) == 2 * TURNS + 1


def test_load_is_bounded(long_session: tuple[Session, int], tmp_path: Path) -> None:
    """A pathology guard: the line-by-line loader peaks near 1x; 3x would be a regression."""
    session, _ = long_session
    path = tmp_path / "long.json"
    session.save(path)
    peak, retained, loaded = traced(lambda: Session.load(path, settings=SETTINGS))
    assert len(loaded.turns) == TURNS
    assert peak / retained < 3.0, f"load peaked at {peak:,} bytes for a {retained:,}-byte history"


def test_load_holds_no_second_copy(long_session: tuple[Session, int], tmp_path: Path) -> None:
    session, _ = long_session
    path = tmp_path / "long.json"
    session.save(path)
    peak, retained, _ = traced(lambda: Session.load(path, settings=SETTINGS))
    assert peak / retained < 1.5, f"load peaked at {peak / retained:.2f}x the history it loaded"
