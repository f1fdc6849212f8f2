"""The Session API (the scripts' entry point) against the emulator, and its sans-I/O exchange."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.client import ChatClient
from deepseek_magic.conversation.session import SessionFileError, Turn
from deepseek_magic.core.errors import ReplyError, StreamInterrupted
from deepseek_magic.core.events import ContentDelta, Reply

KEY = "sk-emulator"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def new_session(emu: Any, **options: Any) -> Session:
    return Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01), **options)


def last_body(emu: Any) -> dict[str, Any]:
    body: dict[str, Any] = [r for r in emu.requests if r.path.endswith("/chat/completions")][-1].body
    return body


def test_ask_returns_the_reply_object(emulator: Any) -> None:
    session = new_session(emulator, model="deepseek-v4-pro", effort="high")
    reply = session.ask("Name three primes")
    assert reply.content and reply.reasoning and reply.finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert reply.tool_calls == [] and reply.data is None
    assert last_body(emulator)["model"] == "deepseek-v4-pro"
    assert session.usage.total_tokens == reply.usage.total_tokens


def test_closing_a_session_returns_its_own_pool_and_leaves_a_lent_client_open(emulator: Any) -> None:
    with new_session(emulator) as session:
        session.ask("Name three primes")
        own = session.client
    assert own._http.is_closed
    assert session.ask("Name three primes").content  # a closed session opens a fresh pool when asked again
    assert session.client is not own
    session.close()

    lent = ChatClient()
    try:
        with Session(settings=Settings.build(base_url=emulator.base_url, api_key=KEY), client=lent) as borrower:
            borrower.ask("Name three primes")
        assert not lent._http.is_closed
    finally:
        lent.close()


def test_follow_ups_carry_history(emulator: Any) -> None:
    session = new_session(emulator)
    first = session.ask("Remember: the password is swordfish")
    session.ask("What was the password?")
    messages = last_body(emulator)["messages"]
    assert messages[1] == {"role": "assistant", "content": first.content, "reasoning_content": first.reasoning}


def test_reasoning_is_echoed_on_every_assistant_turn_when_tools_are_sent(emulator: Any) -> None:
    """DeepSeek answers 400 otherwise; the emulator enforces the same rule."""
    session = new_session(emulator)
    thought = session.ask("Say hello")
    silent = session.ask("Say hello again", thinking=False)
    assert silent.reasoning == ""
    reply = session.ask("Call get_weather for Paris", tools=[WEATHER])
    assistants = [m for m in last_body(emulator)["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in assistants] == [thought.reasoning, ""]
    assert reply.tool_calls and reply.tool_calls[0].name == "get_weather"
    assert json.loads(reply.tool_calls[0].arguments)["city"]


def test_aask(emulator: Any) -> None:
    session = new_session(emulator)
    seen: list[Any] = []
    reply = asyncio.run(session.aask("Hello from async", on_event=seen.append))
    assert reply.content and any(isinstance(e, ContentDelta) for e in seen)
    assert len(session.turns) == 1


def test_interrupt_keeps_an_interrupted_turn_that_is_not_sent_as_context(emulator: Any) -> None:
    session = new_session(emulator)
    count = 0

    def interrupt(event: Any) -> None:
        nonlocal count
        count += 1
        if count == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.ask("Long story please", key="cell-1", on_event=interrupt)
    turn = session.turn("cell-1")
    assert turn is not None and turn.status == "interrupted" and turn.reply.interrupted
    assert turn.reply.reasoning or turn.reply.content
    session.ask("Next question", key="cell-2")
    assert [m["role"] for m in last_body(emulator)["messages"]] == ["user"], "the half turn is not context"
    session.ask("Long story please", key="cell-1")
    assert session.turn("cell-1").status == "complete"  # type: ignore[union-attr]
    assert [t.key for t in session.turns] == ["cell-1", "cell-2"]


def test_lost_connection_keeps_a_partial_turn(emulator: Any) -> None:
    session = new_session(emulator, extra_headers={"X-Emulator-Fault": "drop_after=5"})
    with pytest.raises(StreamInterrupted):
        session.ask("Hello", key="k")
    turn = session.turn("k")
    assert turn is not None and turn.status == "partial" and turn.reply.partial


def test_json_mode_through_the_api(emulator: Any) -> None:
    session = new_session(emulator)
    reply = session.ask("Return JSON with keys name and age for a person.", json=True)
    assert last_body(emulator)["response_format"] == {"type": "json_object"}
    assert isinstance(reply.data, dict) and {"name", "age"} <= set(reply.data)


def test_save_load_round_trip(emulator: Any, tmp_path: Path) -> None:
    session = new_session(emulator, model="deepseek-v4-pro")
    session.system = "Be brief."
    session.ask("one", key="a")
    session.ask("two", key="b")
    path = session.save(tmp_path / "s.json")
    loaded = Session.load(path, settings=Settings.build(base_url=emulator.base_url, api_key=KEY))
    assert [t.to_dict() for t in loaded.turns] == [t.to_dict() for t in session.turns]
    assert loaded.settings.model == "deepseek-v4-pro" and loaded.system == "Be brief."
    assert KEY not in path.read_text()
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()[1:]] == ["a", "b"]  # JSON Lines


@pytest.mark.parametrize(
    "content",
    ['{"version": 1, "turns": [', "[]", '{"version": 99, "turns": []}', '{"version": 1, "turns": [{"key": 1}]}', ""],
)
def test_corrupt_files_load_nothing_and_say_why(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SessionFileError, match="session file"):
        Session.load(path, settings=Settings.build())


def test_save_is_atomic(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = new_session(emulator)
    session.ask("keep", key="a")
    path = session.save(tmp_path / "s.json")
    before = path.read_text()
    session.ask("more", key="b")
    monkeypatch.setattr(
        "deepseek_magic.conversation.store.json.dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk"))
    )
    with pytest.raises(OSError):
        session.save(path)
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path], "no temporary file left behind"


# ------------------------------------------------------------------ the exchange, without I/O


def test_blank_json_reply_is_not_asked_again() -> None:
    session = Session(settings=Settings.build())
    exchange = session.exchange("Give JSON", json=True, key="k")
    first = exchange.next_request()
    assert first is not None and first.settings.json_mode
    exchange.accept(Reply(content="  "))
    assert exchange.next_request() is None, "a blank is not asked again"
    with pytest.raises(ReplyError, match="blank"):
        exchange.finish()


def test_invalid_json_is_retried_with_the_problem_then_raises_keeping_the_text() -> None:
    session = Session(settings=Settings.build())
    exchange = session.exchange("Give JSON", json=True, key="k")
    exchange.next_request()
    exchange.accept(Reply(content="not json at all"))
    retry = exchange.next_request()
    assert retry is not None
    assert retry.messages[-2]["content"] == "not json at all" and retry.messages[-1]["role"] == "user"
    exchange.accept(Reply(content="still not json"))
    assert exchange.next_request() is None
    with pytest.raises(ReplyError) as info:
        exchange.finish()
    assert info.value.reply is not None and info.value.reply.content == "still not json"
    assert session.turn("k") is not None, "the raw reply is kept in history"


# ------------------------------------------------------------------ session files, field by field

TOOL_ROUND = [
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'},
]


def hand_written_file(path: Path) -> Path:
    """A session file written out by hand (not by ``save``): what ``load`` must read, field by field."""
    turn = {
        "key": "cell-t",
        "prompt": "use f",
        "reply": {"content": "done", "finish_reason": "stop"},
        "system": "Be brief.",
        "model": "deepseek-v4-pro",
        "provider": "deepseek",
        "status": "complete",
        "created": 1700000000.5,
        "intermediate": TOOL_ROUND,
    }
    partial = {"key": "cell-p", "prompt": "cut", "reply": {"content": "half"}, "status": "partial"}
    stopped = {"key": "cell-i", "prompt": "stop", "reply": {"content": "so"}, "status": "interrupted"}
    document = {"version": 1, "name": "research", "system": "Sticky.", "turns": [turn, partial, stopped]}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_load_reads_every_turn_field_of_a_hand_written_file(tmp_path: Path) -> None:
    loaded = Session.load(hand_written_file(tmp_path / "hand.json"), settings=Settings.build())
    assert loaded.name == "research" and loaded.system == "Sticky."
    first, partial, stopped = loaded.turns
    assert (first.key, first.prompt, first.reply.content) == ("cell-t", "use f", "done")
    assert (first.system, first.model, first.provider) == ("Be brief.", "deepseek-v4-pro", "deepseek")
    assert (first.status, first.created, first.intermediate) == ("complete", 1700000000.5, TOOL_ROUND)
    assert [partial.status, stopped.status] == ["partial", "interrupted"]
    assert (partial.model, partial.provider, partial.created, partial.intermediate) == ("", "", 0.0, [])
    # Only the complete turn is context, with its tool round between the prompt and the answer.
    assert [t.key for t in loaded.history_before(None)] == ["cell-t"]
    assert first.messages() == [
        {"role": "user", "content": "use f"},
        *TOOL_ROUND,
        {"role": "assistant", "content": "done", "reasoning_content": ""},
    ]


def test_save_writes_every_turn_field_and_load_gets_them_back(tmp_path: Path) -> None:
    original = Session.load(hand_written_file(tmp_path / "hand.json"), settings=Settings.build())
    path = original.save(tmp_path / "deeper" / "still" / "s.json")  # missing folders are made
    head, first, partial, stopped = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert head["name"] == "research" and head["system"] == "Sticky." and head["turns"] == 3
    assert first["status"] == "complete" and first["intermediate"] == TOOL_ROUND
    assert (first["system"], first["model"], first["provider"]) == ("Be brief.", "deepseek-v4-pro", "deepseek")
    assert first["created"] == 1700000000.5
    assert [partial["status"], stopped["status"]] == ["partial", "interrupted"]
    again = Session.load(path, settings=Settings.build())
    assert [(t.key, t.status, t.intermediate) for t in again.turns] == [
        ("cell-t", "complete", TOOL_ROUND),
        ("cell-p", "partial", []),
        ("cell-i", "interrupted", []),
    ]


def test_save_keeps_text_as_written(tmp_path: Path) -> None:
    session = Session(settings=Settings.build())
    session.turns.append(Turn("k", "Café ☕", Reply(content="naïve — ok"), created=1.0))
    path = session.save(tmp_path / "s.json")
    assert "Café ☕" in path.read_text(encoding="utf-8") and "naïve — ok" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "paused"}, "turns.0.status: Input should be 'complete', 'partial' or 'interrupted'"),
        ({"key": 1}, "turns.0.key: Input should be a valid string"),
        ({"prompt": ["x"]}, "turns.0.prompt: Input should be a valid string"),
        ({"system": 3}, "turns.0.system: Input should be a valid string"),
        ({"model": None}, "turns.0.model: Input should be a valid string"),
        ({"provider": 2}, "turns.0.provider: Input should be a valid string"),
        ({"created": "today"}, "turns.0.created: Input should be a valid number"),
        ({"intermediate": {"role": "tool"}}, "turns.0.intermediate: Input should be a valid list"),
        ({"intermediate": ["text"]}, "turns.0.intermediate.0: Input should be a JSON object"),
    ],
)
def test_a_turn_with_a_wrong_field_loads_nothing(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    turn = {"key": "k", "prompt": "p", "reply": {"content": "r"}, **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"version": 1, "turns": [turn]}))
    with pytest.raises(SessionFileError) as raised:
        Session.load(path, settings=Settings.build())
    assert str(raised.value) == f"{path} is not a valid session file: {message}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": 1, "turns": [\n{"key": "k", "prompt": "p", "reply": {}}\n]}\nextra', "Extra data: line 4"),
        ('{"version": 1, "turns": [\n{"key": "k", "prompt": "p", "reply": {}}\n', "Expecting ',' delimiter"),
        ("[1, 2]", "the file: Input should be a JSON object"),
        ('{"version": 1, "turns": ["not a turn"]}', "turns.0: Input should be a JSON object"),
    ],
)
def test_a_damaged_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SessionFileError, match=message):
        Session.load(path, settings=Settings.build())
