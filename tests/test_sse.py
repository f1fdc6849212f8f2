"""The event-stream decoder against the cases the specification and real servers produce."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepseek_magic.client.sse import SSEDecoder, SSEEvent


def decode(*pieces: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.flush()


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_each_line_ending(eol: bytes) -> None:
    wire = b"data: one" + eol + eol + b"data: two" + eol + eol
    assert [e.data for e in decode(wire)] == ["one", "two"]


def test_crlf_split_between_cr_and_lf_makes_no_extra_event() -> None:
    assert [e.data for e in decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")] == ["a", "b"]


def test_comments_are_skipped_and_counted() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\n\n: keep-alive\n\ndata: {}\n\n")
    assert [e.data for e in events] == ["{}"]
    assert decoder.comments == 2


def test_multiline_data_is_joined_with_newlines() -> None:
    assert decode(b'data: {\ndata: "a": 1\ndata: }\n\n')[0].data == '{\n"a": 1\n}'


def test_event_id_and_retry_fields() -> None:
    (event,) = decode(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\n")
    assert (event.event, event.id, event.retry, event.data) == ("delta", "7", 1500, "x")


def test_id_persists_and_bad_retry_and_nul_id_are_ignored() -> None:
    first, second = decode(b"id: 1\ndata: a\n\nid: bad\x00\nretry: 1s\ndata: b\n\n")
    assert first.id == "1"
    assert second.id == "1" and second.retry is None


def test_control_only_blocks_dispatch_nothing() -> None:
    """Proxies that add id:/retry: blocks must not yield empty payloads (openai-python#2722)."""
    assert [e.data for e in decode(b"retry: 3000\n\nid: 5\n\nevent: ping\n\ndata: x\n\n")] == ["x"]


def test_no_space_after_colon_and_field_without_colon() -> None:
    events = decode(b"data:tight\n\ndata\n\n")
    assert [e.data for e in events] == ["tight", ""]


def test_last_event_without_trailing_newline_is_delivered_on_flush() -> None:
    assert [e.data for e in decode(b"data: a\n\ndata: [DONE]")] == ["a", "[DONE]"]


def test_blank_lines_before_first_event() -> None:
    assert [e.data for e in decode(b'\n\n\r\n\ndata: {"ok": true}\n\n')] == ['{"ok": true}']


def test_utf8_split_inside_a_character() -> None:
    wire = "data: caf\u00e9 \U0001f60a\n\n".encode()
    for cut in range(1, len(wire)):
        assert [e.data for e in decode(wire[:cut], wire[cut:])] == ["caf\u00e9 \U0001f60a"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: \xff\xfe\n\n")[0].data == "\ufffd\ufffd"


def test_one_byte_at_a_time() -> None:
    wire = b": keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: e\ndata: c\n\n"
    assert [(e.event, e.data) for e in decode(*[wire[i : i + 1] for i in range(len(wire))])] == [
        ("message", "a\nb"),
        ("e", "c"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_arbitrary_bytes_never_crash_and_splitting_changes_nothing(blob: bytes, cuts: list[int]) -> None:
    whole = decode(blob)
    points = sorted({c % (len(blob) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(blob[start:point])
        start = point
    pieces.append(blob[start:])
    assert decode(*pieces) == whole
