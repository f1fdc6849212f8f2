"""Property tests (hypothesis) for everything that reads untrusted input.

* the stream decoder: arbitrary bytes never crash it, generated valid streams split anywhere give the same
  events (tests/test_sse.py and tests/test_recordings.py cover the SSE layer and the real recordings);
* ``%%deepseek`` option parsing and interpolation: arbitrary line and cell text raise nothing but IPython's
  ``UsageError``, and ``interpolate`` raises nothing but ``InterpolationError`` over a hostile namespace;
* session files: truncated, corrupted or wrongly typed files load nothing and say why in one line.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from pydantic import BaseModel
from shell import TestingShell
from strategy_parts import braced, escaped, index, joined, one_line

from deepseek_magic import Session, Settings
from deepseek_magic.client import StreamDecoder
from deepseek_magic.conversation.session import SessionFileError, Turn
from deepseek_magic.core.events import (
    Accumulator,
    ContentDelta,
    Error,
    Event,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    Reply,
    ResponseMeta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread
from deepseek_magic.features.interpolation import STR_CAP, InterpolationError, interpolate
from deepseek_magic.ipython.magics import DeepSeekMagics
from deepseek_magic.providers import get_provider
from deepseek_magic.providers.openai_compat import ChunkParser

KEY = "sk-emulator"
FUZZ = settings(max_examples=200, deadline=None)
FILES = settings(max_examples=100, deadline=None)  # each example writes (and fsyncs) a session file


# ================================================================== the stream decoder


def split(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(blob) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(blob[start:point])
        start = point
    pieces.append(blob[start:])
    return pieces


def decode(pieces: list[bytes]) -> list[Event]:
    decoder = StreamDecoder(get_provider("deepseek"))
    events: list[Event] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.flush()


# SSE framing pieces and arbitrary bytes, so the fuzz reaches the chunk parser and not only the line splitter.
_WIRE_PIECE = st.sampled_from(
    [
        *(b"data: ", b"data:", b"\n", b"\r\n", b"\r", b": keep-alive", b"event: x", b"id: 1", b"retry: 9"),
        *(b"[DONE]", b"{}", b'{"choices": []}', b'{"id": "a"}', b"\xff\xfe", "é😊".encode()),
    ]
) | st.binary(max_size=30)


@FUZZ
@given(st.lists(_WIRE_PIECE, max_size=40).map(b"".join), st.lists(st.integers(min_value=0), max_size=12))
def test_stream_decoder_survives_arbitrary_bytes_split_anywhere(blob: bytes, cuts: list[int]) -> None:
    whole = decode([blob])
    assert decode(split(blob, cuts)) == whole


@FUZZ
@given(st.one_of(st.text(), st.sampled_from(["[DONE]", "", "null", "[]", "{", '{"choices": null}', "1e999"])))
def test_chunk_parser_survives_arbitrary_text(data: str) -> None:
    parser = ChunkParser()
    events = parser.feed(data)
    assert isinstance(events, list)
    try:
        decoded = json.loads(data)
    except ValueError:
        assert parser.malformed == 1 or data == "[DONE]"
    else:
        if not isinstance(decoded, dict):
            assert parser.malformed == 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
# Each field is either well formed or any JSON value at all.
_WRONGLY_SHAPED_CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=8), _JSON),
        "choices": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "index": st.one_of(st.integers(0, 2), _JSON),
                        "delta": st.one_of(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "content": _JSON,
                                    "reasoning_content": _JSON,
                                    "tool_calls": st.one_of(st.lists(_JSON, max_size=2), _JSON),
                                },
                            ),
                            _JSON,
                        ),
                        "finish_reason": _JSON,
                        "logprobs": _JSON,
                    },
                )
                | _JSON,
                max_size=2,
            ),
            _JSON,
        ),
        "usage": st.one_of(st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens"]), _JSON), _JSON),
        "error": _JSON,
    },
)


def well_typed(event: Event) -> bool:
    if isinstance(event, (ContentDelta, ReasoningDelta)):
        return isinstance(event.text, str) and isinstance(event.choice, int)
    if isinstance(event, ToolCallDelta):
        return isinstance(event.index, int) and isinstance(event.arguments, str) and isinstance(event.choice, int)
    if isinstance(event, ResponseMeta):
        return all(v is None or isinstance(v, str) for v in (event.id, event.model, event.system_fingerprint))
    if isinstance(event, Usage):
        return all(isinstance(v, int) for v in (event.prompt_tokens, event.completion_tokens, event.total_tokens))
    if isinstance(event, Finish):
        return event.reason is None or isinstance(event.reason, str)
    if isinstance(event, LogprobsDelta):
        return all(isinstance(entry, dict) for entry in event.content + event.reasoning)
    return isinstance(event, Error) and isinstance(event.message, str)


@FUZZ
@given(_WRONGLY_SHAPED_CHUNK)
@example({"choices": [1]})
@example({"usage": {"prompt_tokens": "x"}})
@example({"choices": [{"delta": {"content": 5}}]})
def test_a_wrongly_shaped_chunk_is_skipped_as_malformed(chunk: dict[str, Any]) -> None:
    parser = ChunkParser()
    events = parser.feed(json.dumps(chunk))
    assert all(well_typed(event) for event in events)
    # Through the whole decoder too: that is what the client runs on every network chunk.
    decode([b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"])


_PIECE_TEXT = st.text(min_size=1, max_size=12)  # raw unicode: ensure_ascii=False puts multi-byte UTF-8 on the wire
_DELTA = st.one_of(
    st.tuples(st.just("reasoning_content"), _PIECE_TEXT),
    st.tuples(st.just("content"), _PIECE_TEXT),
    st.tuples(st.just("tool"), st.tuples(st.integers(0, 1), st.sampled_from(["lookup", "fetch"]), _PIECE_TEXT)),
)


def chunk_payloads(deltas: list[tuple[str, Any]], finish: str) -> list[str]:
    """``chat.completion.chunk`` payloads as DeepSeek sends them (one delta each, then finish and usage)."""
    payloads = []
    started: set[int] = set()
    for kind, value in deltas:
        if kind == "tool":
            index, name, arguments = value
            call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
            if index not in started:
                started.add(index)
                call.update(id=f"call_{index}", type="function")
                call["function"]["name"] = name
            delta: dict[str, Any] = {"tool_calls": [call]}
        else:
            delta = {kind: value}
        chunk = {"id": "x1", "model": "deepseek-v4-flash", "choices": [{"index": 0, "delta": delta}]}
        payloads.append(json.dumps(chunk, ensure_ascii=False))
    last = {"id": "x1", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    usage = {"id": "x1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}}
    return [*payloads, json.dumps(last), json.dumps(usage), "[DONE]"]


@FUZZ
@given(
    st.lists(_DELTA, max_size=12),
    st.sampled_from(["stop", "length", "tool_calls"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_valid_streams_split_anywhere_give_the_same_events(
    deltas: list[tuple[str, Any]], finish: str, eol: str, keepalives: bool, cuts: list[int]
) -> None:
    payloads = chunk_payloads(deltas, finish)
    comment = f": keep-alive{eol}" if keepalives else ""
    wire = "".join(f"{comment}data: {payload}{eol}{eol}" for payload in payloads).encode()

    events = decode([wire])
    assert decode(split(wire, cuts)) == events
    assert decode([wire[i : i + 1] for i in range(len(wire))]) == events
    # What the stream holds, read without the decoder: framing and splitting lose and add nothing.
    parser = ChunkParser()
    assert events == [event for payload in payloads for event in parser.feed(payload)]
    accumulator = Accumulator()
    for event in events:
        accumulator.add(event)
    reply = accumulator.reply()
    assert reply.reasoning == "".join(v for k, v in deltas if k == "reasoning_content")
    assert reply.content == "".join(v for k, v in deltas if k == "content")
    calls: dict[int, str] = {}
    for kind, value in deltas:
        if kind == "tool":
            calls[value[0]] = calls.get(value[0], "") + value[2]
    assert {call.index: call.arguments for call in reply.tool_calls} == calls
    assert reply.finish_reason == finish and reply.usage is not None and reply.usage.total_tokens == 10


# ======================================================= option parsing and interpolation


class Exploding:
    """Every way of looking at it raises a different error."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # numpy and pandas probe protocols; let them build containers of it
        raise RuntimeError(f"no attribute {name} today")

    def __getitem__(self, key: Any) -> Any:
        raise LookupError("nothing in here")

    def __repr__(self) -> str:
        raise OSError("repr exploded")

    def __str__(self) -> str:
        raise UnicodeError("str exploded")

    def __len__(self) -> int:
        raise ZeroDivisionError

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("not iterable today")

    def __eq__(self, other: object) -> bool:
        raise ValueError("incomparable")

    def __hash__(self) -> int:
        return 7


class ClassRaises:
    """Even ``isinstance`` fails on it: reading ``__class__`` raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("who am I")

    def __repr__(self) -> str:
        return "ClassRaises()"


class Endless:
    """Every attribute is itself, and its repr is enormous."""

    def __getattr__(self, name: str) -> Endless:
        return self

    def __getitem__(self, key: Any) -> Endless:
        return self

    def __repr__(self) -> str:
        return "endless " * 200_000


class RaisingMapping(Mapping[str, Any]):
    """A namespace that claims names and then fails to produce them."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base

    def __getitem__(self, key: str) -> Any:
        if key.startswith("ghost"):
            raise RuntimeError("the ghost vanished")
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        if key == "poltergeist":
            raise TypeError("cannot say")
        return isinstance(key, str) and (key.startswith("ghost") or key in self.base)

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)


class Model(BaseModel):
    name: str
    score: float


def lookup(term: str) -> str:
    """Look a term up."""
    return term


@functools.cache
def tricky_namespace() -> dict[str, Any]:
    """Built once: nothing here is changed by rendering it."""
    recursive: list[Any] = [1]
    recursive.append(recursive)
    deep: list[Any] = []
    cursor = deep
    for _ in range(3000):
        cursor.append([])
        cursor = cursor[0]
    columns = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])
    return {
        "df": pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 18.0]}),
        "wide": pd.DataFrame([range(2000)], columns=[f"c{i}" for i in range(2000)]),
        "multi": pd.DataFrame(np.arange(6).reshape(2, 3), columns=columns),
        "oddcols": pd.DataFrame([[1, 2, 3]], columns=[0, ("t", 1), None]),
        "dupcols": pd.DataFrame([[1, 2]], columns=["a", "a"]),
        "empty": pd.DataFrame(),
        "objframe": pd.DataFrame({"x": [Exploding(), "y" * 100_000, None, {"k": Exploding()}]}),
        "series": pd.Series([Exploding(), math.nan, math.inf]),
        "arr": np.array([Exploding(), Exploding()], dtype=object),
        "arr0": np.array(3.5),
        "big": np.zeros((300, 300)),
        "boom": Exploding(),
        "classless": ClassRaises(),
        "endless": Endless(),
        "recursive": recursive,
        "deep": deep,
        "hugeint": 10**5000,  # its repr exceeds int_max_str_digits
        "huge": "x" * 3_000_000,
        "items": [1, "two", None, Exploding(), {Exploding(), 3}],
        "nested": {"k": [1, {"deeper": Exploding()}], 5: "int key", Exploding(): "bad key"},
        "odd_set": {1, "a", (2, 3), frozenset({4}), math.nan},
        "raw": b"\x00\xff",
        "Model": Model,
        "schema_dict": {"type": "object", "properties": {"name": {"type": "string"}}},
        "lookup": lookup,
        "module": sys,
        "gen": (i for i in range(3)),
        "nan": math.nan,
        "np_nan": np.float64("nan"),
    }


_NAMES = [*sorted(tricky_namespace()), "ghost", "ghostly", "poltergeist", "absent", "__name__"]


def _option_text(pair: tuple[str, str | None, str]) -> str:
    """``--opt``, ``--opt value`` or ``--opt=value``."""
    return pair[0] if pair[1] is None else f"{pair[0]}{pair[1]}{pair[2]}"


_STEP = st.one_of(
    st.sampled_from([".x", ".name", ".columns", ".shape", ".__class__", "._private", ".real", ".k", ".T"]),
    st.integers(-3, 3).map(index),
    st.sampled_from(['["k"]', "['a']", '["x"]', "[0]", "[99999999999999999999]"]),
)
_REFERENCE = st.tuples(st.sampled_from(_NAMES), st.lists(_STEP, max_size=3)).map(joined)
_CELL_TEXT = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["{", "}", "{{", "}}", " ", "\n", '{"a": {"b": 1}}', "{x!r}", "{ df }", "\\", "$x", "%%"]),
        _REFERENCE.map(braced),
        _REFERENCE.map(escaped),
    ),
    min_size=1,
    max_size=8,
).map("".join)


@FUZZ
@given(_CELL_TEXT, st.integers(-5, 5000))
def test_interpolation_of_any_text_raises_only_interpolation_error(text: str, budget: int) -> None:
    namespace = tricky_namespace()
    for ns in (namespace, RaisingMapping(namespace)):
        try:
            result = interpolate(text, ns, budget=budget)
        except InterpolationError as exc:
            assert type(exc) is InterpolationError
            assert "\n" not in str(exc) and len(str(exc)) < 1000
        else:
            assert isinstance(result, str)
            assert len(result) <= len(text) + text.count("{") * max(STR_CAP, budget), "inserted values are bounded"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


@pytest.fixture
def ip(
    testing_shell: TestingShell, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestingShell]:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    testing_shell.user_ns.clear()
    testing_shell.init_user_ns()
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    testing_shell.user_ns.update(tricky_namespace())
    yield testing_shell
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")


def _options() -> list[str]:
    parser = DeepSeekMagics.deepseek.parser  # type: ignore[attr-defined]
    return sorted(parser._option_string_actions)


_VALUE = st.one_of(
    st.sampled_from(
        [
            *("0", "1", "-1", "2.5", "nan", "inf", "-inf", "1e309", "99999999999999999999", "0x10", "", "''", '""'),
            *("df", "boom", "boom.real", "endless.a.b", "items", "Model", "schema_dict", "lookup", "get_ipython"),
            *("exit", "module", "items", "lookup,lookup", "lookup,", ",", "absent", "'two words'", "'unclosed"),
            *("deepseek-v4-pro", "runware", "anyfast", "evolink", "low", "max", "widget", "text", "a b", "\\n"),
            *("sk-abcdefgh1234", "key=1", "--", "-", "=", "{df}", "$df", "é😊", "\x00", "\t", "\\t"),
        ]
    ),
    st.text(max_size=12).filter(one_line),
)
# Mostly option-value pairs (``--opt value``, ``--opt=value`` or a bare flag), so most lines get past the parser.
_PAIR = st.tuples(st.sampled_from(_options()), st.sampled_from([" ", "=", None]), _VALUE).map(_option_text)
_LINE = st.lists(st.one_of(_PAIR, _PAIR, _VALUE), max_size=5).map(" ".join)


def assert_only_usage_errors(ip: TestingShell, line: str, cell: str) -> None:
    try:
        with capture_output():
            ip.run_cell(f"%%deepseek --dry-run {line}\n{cell}")
    except UsageError as exc:
        assert type(exc) is UsageError, f"{type(exc).__name__}: {exc}"
        assert "\n" not in str(exc).strip(), f"a usage error of several lines: {exc}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_LINE, _CELL_TEXT)
def test_any_line_and_cell_give_a_dry_run_or_a_usage_error(
    ip: TestingShell, emulator: RunningEmulator, line: str, cell: str
) -> None:
    before = len(emulator.requests)
    assert_only_usage_errors(ip, line, cell)
    assert len(emulator.requests) == before, "a dry run sent something"


@pytest.mark.parametrize("line", ["--schema boom.x", "--schema classless"])
def test_a_schema_name_that_raises_on_lookup_is_a_usage_error(ip: TestingShell, line: str) -> None:
    assert_only_usage_errors(ip, line, "Hello")


# ===================================================================== session files

_SETTINGS = Settings.build(base_url="http://127.0.0.1:9", api_key=KEY)
_TEXT = st.text(max_size=30)
_OPT_TEXT = st.none() | _TEXT
_USAGE = st.builds(
    Usage,
    prompt_tokens=st.integers(0, 10**6),
    completion_tokens=st.integers(0, 10**6),
    total_tokens=st.integers(0, 10**6),
    reasoning_tokens=st.integers(0, 10**5),
    cost=st.none() | st.floats(0, 10, allow_nan=False),
)
_CALL = st.builds(
    ToolCall,
    id=st.text(min_size=1, max_size=10),
    name=st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
    arguments=st.text(max_size=30),
    index=st.integers(0, 3),
)
_REPLY = st.builds(
    Reply,
    content=_TEXT,
    reasoning=_TEXT,
    tool_calls=st.lists(_CALL, max_size=2),
    usage=st.none() | _USAGE,
    finish_reason=st.sampled_from([None, "stop", "length", "tool_calls"]),
    id=_OPT_TEXT,
    matched_stop=st.none() | st.integers(0, 9) | _TEXT,
    partial=st.booleans(),
    interrupted=st.booleans(),
    error=_OPT_TEXT,
    warnings=st.lists(_TEXT, max_size=2),
)
_TOOL_MESSAGE = st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": _TEXT, "content": _TEXT})
_TURN = st.builds(
    Turn,
    key=st.text(min_size=1, max_size=12),
    prompt=_TEXT,
    reply=_REPLY,
    system=_OPT_TEXT,
    model=st.sampled_from(["deepseek-v4-flash", "deepseek-v4-pro"]),
    provider=st.just("deepseek"),
    status=st.sampled_from(["complete", "partial", "interrupted"]),
    created=st.floats(0, 2e9, allow_nan=False),
    intermediate=st.lists(_TOOL_MESSAGE, max_size=2),
)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    session = Session(
        draw(st.text(max_size=10)),
        settings=_SETTINGS,
        system=draw(_OPT_TEXT),
        **draw(
            st.fixed_dictionaries(
                {},
                optional={"model": st.just("deepseek-v4-pro"), "temperature": st.floats(0, 2), "seed": st.integers()},
            )
        ),
    )
    for turn in draw(st.lists(_TURN, max_size=4)):
        session.store(turn)
    return session


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session-files")


def load(path: Path) -> Session | SessionFileError:
    """The loaded session, or the SessionFileError (checked to be one line naming the file)."""
    try:
        return Session.load(path, settings=_SETTINGS)
    except SessionFileError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
        return exc


def resaved(session: Session, path: Path) -> dict[str, Any]:
    """``session`` after a save and a load: a loaded session must survive its own round trip."""
    session.save(path)
    again = Session.load(path, settings=_SETTINGS)
    return again.to_dict()


@FILES
@given(sessions())
def test_a_saved_session_loads_back_equal(folder: Path, session: Session) -> None:
    path = session.save(folder / "whole.json")
    loaded = load(path)
    assert isinstance(loaded, Session) and loaded.to_dict() == session.to_dict()


@FILES
@given(sessions(), st.floats(0, 1, exclude_max=True))
def test_a_truncated_file_loads_nothing_and_says_why(folder: Path, session: Session, fraction: float) -> None:
    path = session.save(folder / "cut.json")
    data = path.read_bytes().rstrip()  # a trailing newline is not content: cutting only it leaves a whole file
    path.write_bytes(data[: int(len(data) * fraction)])
    assert isinstance(load(path), SessionFileError)


@FILES
@given(sessions(), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4))
def test_flipped_bytes_load_nothing_or_a_session_that_survives_a_round_trip(
    folder: Path, session: Session, flips: list[tuple[float, int]]
) -> None:
    path = session.save(folder / "flipped.json")
    data = bytearray(path.read_bytes())
    for where, mask in flips:
        data[int(len(data) * where)] ^= mask
    path.write_bytes(bytes(data))
    loaded = load(path)
    if isinstance(loaded, Session):
        assert resaved(loaded, folder / "again.json") == loaded.to_dict()
        try:
            unchanged = json.loads(bytes(data)) == json.loads(json.dumps(session.to_dict()))
        except ValueError:
            unchanged = False
        if unchanged:
            assert loaded.to_dict() == session.to_dict()


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON document (not the root)."""
    if isinstance(node, dict):
        children: Any = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return
    for key, child in children:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def json_kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


_WRONG_VALUES: list[Any] = [None, True, 5, 2.5, "text", [], [1, "a"], {}, {"k": 1}]


def _has_turns(session: Session) -> bool:
    return bool(session.turns)


@st.composite
def wrongly_typed(draw: st.DrawFn) -> tuple[Session, dict[str, Any], tuple[Any, ...]]:
    session = draw(sessions().filter(_has_turns))
    document = session.to_dict()
    path = draw(st.sampled_from(list(paths(document))))
    original = json_kind(_get(document, path))
    value = draw(st.sampled_from([v for v in _WRONG_VALUES if json_kind(v) != original]))
    return session, replaced(document, path, value), path


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def type_problems(session: Session) -> list[str]:
    """Fields of a loaded session whose value has not the type the code relies on."""

    def check(where: str, value: Any, *types: Any) -> list[str]:
        return [] if isinstance(value, types) else [f"{where} is {value!r}"]

    def reply_problems(where: str, reply: Reply) -> list[str]:
        problems = check(f"{where}.content", reply.content, str) + check(f"{where}.reasoning", reply.reasoning, str)
        for name in ("finish_reason", "id", "model", "system_fingerprint", "error"):
            problems += check(f"{where}.{name}", getattr(reply, name), str, type(None))
        problems += check(f"{where}.matched_stop", reply.matched_stop, str, int, type(None))
        for name in ("partial", "interrupted", "cached"):
            problems += check(f"{where}.{name}", getattr(reply, name), bool)
        problems += check(f"{where}.logprobs", reply.logprobs, dict, type(None))
        problems += check(f"{where}.warnings", reply.warnings, list)
        problems += [p for w in reply.warnings for p in check(f"{where}.warnings[]", w, str)]
        for call in reply.tool_calls:
            problems += check(f"{where}.tool_call.id", call.id, str) + check(f"{where}.tool_call.name", call.name, str)
            problems += check(f"{where}.tool_call.arguments", call.arguments, str)
            problems += check(f"{where}.tool_call.index", call.index, int)
        if reply.usage is not None:
            for name in ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens"):
                problems += check(f"{where}.usage.{name}", getattr(reply.usage, name), int)
            problems += check(f"{where}.usage.cost", reply.usage.cost, int, float, type(None))
        for choice in reply.choices:
            problems += reply_problems(f"{where}.choice", choice)
        return problems

    problems = check("name", session.name, str) + check("system", session.system, str, type(None))
    for turn in session.turns:
        where = f"turn {turn.key!r}"
        problems += check(f"{where}.prompt", turn.prompt, str) + check(f"{where}.system", turn.system, str, type(None))
        problems += check(f"{where}.created", turn.created, float)
        problems += [p for m in turn.intermediate for p in check(f"{where}.intermediate[]", m, dict)]
        problems += reply_problems(f"{where}.reply", turn.reply)
    return problems


@FILES
@given(wrongly_typed())
def test_a_wrongly_typed_value_never_raises_anything_but_session_file_error(
    folder: Path, case: tuple[Session, dict[str, Any], tuple[Any, ...]]
) -> None:
    _, document, _ = case
    path = folder / "typed.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    loaded = load(path)
    if isinstance(loaded, Session):
        assert resaved(loaded, folder / "again.json") == loaded.to_dict()


@FILES
@given(wrongly_typed())
@example(
    (
        Session("s", settings=_SETTINGS),
        {
            "version": 1,
            "name": "s",
            "system": None,
            "settings": {},
            "turns": [{"key": "k", "prompt": "hi", "reply": {"content": 5}}],
        },
        ("turns", 0, "reply", "content"),
    )
)
def test_a_wrongly_typed_value_is_refused(folder: Path, case: tuple[Session, dict[str, Any], tuple[Any, ...]]) -> None:
    _, document, where = case
    path = folder / "typed.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    loaded = load(path)
    if isinstance(loaded, Session):
        assert type_problems(loaded) == [], f"{where} replaced: loaded anyway"
        assert isinstance(document["turns"], list) and len(loaded.turns) == len(document["turns"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(0, 1, exclude_max=True), st.booleans(), st.sampled_from(["", "-s other"]))
def test_a_failed_load_leaves_the_notebook_sessions_untouched(
    ip: TestingShell, folder: Path, fraction: float, flip: bool, option: str
) -> None:
    magics = ip.magics_manager.registry["DeepSeekMagics"]
    session = magics.get_session()
    session.reset()
    session.store(Turn(key="cell-a", prompt="hi", reply=Reply(content="hello", usage=Usage(1, 2, 3))))
    before = (dict(magics.sessions), session.to_dict())
    path = session.save(folder / "notebook.json")
    data = path.read_bytes().rstrip()  # a trailing newline is not content: cutting only it leaves a whole file
    cut = int(len(data) * fraction)
    bad = folder / "bad.json"
    bad.write_bytes(data[:cut] + b"\xff" + data[cut + 1 :] if flip else data[:cut])  # cut short, or not UTF-8
    with pytest.raises(SessionFileError) as failure:
        ip.run_line_magic("deepseek", f"load {bad} {option}")
    assert "\n" not in str(failure.value)
    assert (dict(magics.sessions), session.to_dict()) == before, "a failed load changed nothing"
    ip.run_line_magic("deepseek", f"load {path} {option}")  # a good file still loads after a bad one
    loaded = magics.get_session("other" if option else None)
    assert loaded.to_dict()["turns"] == before[1]["turns"]
