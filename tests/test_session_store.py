"""Session files: JSON Lines out, pydantic-validated lines in, older whole-document files still loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.conversation.store import FORMAT, SESSION_FILE_VERSION, SessionFileError
from deepseek_magic.conversation.turns import Turn
from deepseek_magic.core.events import Reply, ToolCall, Usage
from deepseek_magic.core.records import saved_reply

SETTINGS = Settings.build(api_key="sk-test", base_url="http://127.0.0.1:9/v1")


def session_with(turns: int) -> Session:
    session = Session("store-test", settings=SETTINGS, system="be brief")
    for number in range(turns):
        reply = Reply(
            content=f"answer {number} ünïcödé \u2028 \x85 \u2029 line",
            reasoning="because",
            usage=Usage(prompt_tokens=10 + number, completion_tokens=3, total_tokens=13 + number, cost=0.25),
            tool_calls=[ToolCall(id=f"call-{number}", name="lookup", arguments='{"q": 1}')],
        )
        session.turns.append(Turn(key=f"cell-{number}", prompt=f"question {number}\nsecond line", reply=reply))
    return session


def test_a_saved_session_is_one_header_line_then_one_line_per_turn(tmp_path: Path) -> None:
    path = session_with(3).save(tmp_path / "s.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    assert head["format"] == "deepseek-magic session" and head["version"] == 2 and head["turns"] == 3
    assert head["name"] == "store-test" and head["system"] == "be brief"
    assert "api_key" not in head["settings"] and "base_url" not in head["settings"]
    assert [json.loads(line)["key"] for line in lines[1:]] == ["cell-0", "cell-1", "cell-2"]


def test_a_saved_session_loads_back_equal(tmp_path: Path) -> None:
    session = session_with(3)
    loaded = Session.load(session.save(tmp_path / "s.jsonl"), settings=SETTINGS)
    assert loaded.to_dict() == session.to_dict()
    assert loaded.turns[1].reply.tool_calls == [ToolCall(id="call-1", name="lookup", arguments='{"q": 1}')]
    assert loaded.turns[2].reply.usage == Usage(prompt_tokens=12, completion_tokens=3, total_tokens=15, cost=0.25)


def version_1_lines(session: Session) -> str:
    """A file as version 1 wrote it: one JSON object, its turns one per line inside a list."""
    head = {"version": 1, "name": session.name, "system": session.system, "settings": {"model": "deepseek-v4-pro"}}
    text = json.dumps(head)[:-1] + ', "turns": [\n'
    for index, turn in enumerate(session.turns):
        text += ("," if index else "") + json.dumps(turn.to_dict()) + "\n"
    return text + "]}\n"


def test_a_version_1_file_still_loads(tmp_path: Path) -> None:
    session = session_with(2)
    old = tmp_path / "old.json"
    old.write_text(version_1_lines(session), encoding="utf-8")
    loaded = Session.load(old, settings=SETTINGS)
    assert [t.to_dict() for t in loaded.turns] == [t.to_dict() for t in session.turns]
    assert loaded.settings.model == "deepseek-v4-pro"
    pretty = tmp_path / "pretty.json"
    document = {"version": 1, "name": "p", "system": None, "turns": [t.to_dict() for t in session.turns]}
    pretty.write_text(json.dumps(document, indent=2), encoding="utf-8")
    assert [t.key for t in Session.load(pretty, settings=SETTINGS).turns] == ["cell-0", "cell-1"]


def test_to_dict_is_itself_a_loadable_document(tmp_path: Path) -> None:
    session = session_with(2)
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(session.to_dict()), encoding="utf-8")
    assert Session.load(whole, settings=SETTINGS).to_dict() == session.to_dict()


def rewrite(path: Path, change: object) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(change(lines)), encoding="utf-8")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda lines: lines[:-1], "ends after 2 of its 3 turns"),
        (lambda lines: [*lines, '{"key": "extra"}\n'], "unexpected text after its 3 turns"),
        (
            lambda lines: [lines[0], lines[1].replace('"created": ', '"created": "yesterday", "x": '), *lines[2:]],
            "turn 1: created",
        ),
        (
            lambda lines: [lines[0], lines[1].replace('"partial": false', '"partial": 0'), *lines[2:]],
            "turn 1: reply.partial",
        ),
        (
            lambda lines: [lines[0], lines[1], lines[2].replace('"cost": 0.25', '"cost": -1'), *lines[3:]],
            "turn 2: reply.usage.cost",
        ),
        (lambda lines: [lines[0].replace('"version": 2', '"version": 3'), *lines[1:]], "version"),
        (lambda lines: [lines[0].replace('"turns": 3', '"turns": true'), *lines[1:]], "turns"),
        (lambda lines: [lines[0], lines[1].replace('"prompt": ', '"prompt": NaN, "p": '), *lines[2:]], "NaN"),
    ],
    ids=["cut-at-a-line", "extra-line", "wrong-type", "int-for-bool", "negative-cost", "version", "count", "nan"],
)
def test_a_bad_file_loads_nothing_and_says_why_in_one_line(tmp_path: Path, change: object, said: str) -> None:
    path = session_with(3).save(tmp_path / "bad.jsonl")
    rewrite(path, change)
    with pytest.raises(SessionFileError) as caught:
        Session.load(path, settings=SETTINGS)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and said in message, message


def test_unknown_fields_are_ignored_so_a_newer_file_still_loads(tmp_path: Path) -> None:
    path = session_with(1).save(tmp_path / "newer.jsonl")
    rewrite(
        path,
        lambda lines: [
            lines[0].replace('"turns": 1', '"turns": 1, "written_by": "v9"'),
            lines[1].replace('"prompt": ', '"attachments": [], "prompt": '),
        ],
    )
    assert Session.load(path, settings=SETTINGS).turns[0].prompt == "question 0\nsecond line"


def test_where_to_connect_and_the_key_never_come_from_a_file(tmp_path: Path) -> None:
    path = session_with(1).save(tmp_path / "s.jsonl")
    rewrite(
        path,
        lambda lines: [
            lines[0].replace('"settings": {', '"settings": {"api_key": "sk-evil", "base_url": "http://evil.test", '),
            *lines[1:],
        ],
    )
    loaded = Session.load(path, settings=SETTINGS)
    assert loaded.settings.base_url == SETTINGS.base_url
    assert loaded.settings.resolved_api_key() == "sk-test"


def test_saved_replies_are_read_strictly() -> None:
    reply = Reply(content="x", usage=Usage(prompt_tokens=1, total_tokens=1), warnings=["w"])
    assert saved_reply(reply.to_dict()) == reply
    for bad in ({"content": 5}, {"usage": {"prompt_tokens": "1"}}, {"warnings": [1]}, {"tool_calls": [{"id": 1}]}):
        with pytest.raises(ValueError):
            saved_reply(bad)


def test_the_format_constants_say_what_is_written() -> None:
    assert (FORMAT, SESSION_FILE_VERSION) == ("deepseek-magic session", 2)
