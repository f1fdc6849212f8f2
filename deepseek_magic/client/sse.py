"""An incremental decoder for the ``text/event-stream`` format.

Why not httpx-sse: it works on decoded text lines that httpx produces, which
costs a second pass over every byte and would have to be fed by httpx's own
line splitter. This decoder takes raw network chunks as they arrive, split
anywhere (even inside a UTF-8 sequence or between CR and LF), and does the
line splitting on bytes with ``bytes.splitlines``: LF, CR and CRLF are the
only line breaks it knows, which are exactly the three the SSE specification
allows. CR and LF bytes never occur inside a multi-byte UTF-8 sequence, so a
line is always whole before it is decoded.

Rules followed (WHATWG "server-sent events", §9.2.6):
- a blank line dispatches the event being built; an event with no ``data``
  lines is dropped (proxies that send only ``id:``/``retry:`` blocks would
  otherwise produce empty payloads that break ``json.loads``);
- lines starting with ``:`` are comments (DeepSeek's ``: keep-alive``);
- ``data`` lines accumulate, joined by ``\\n``;
- one space after the colon is stripped; a line with no colon is a field
  with an empty value;
- ``id`` containing NUL is ignored; ``retry`` must be all ASCII digits.

Bounds: an unfinished line is kept as a list of pieces (joined once, when its
end arrives), so an endless line costs linear time, and it may grow to
:attr:`SSEDecoder.max_line` bytes; one event's ``data`` may total
:attr:`SSEDecoder.max_event`. Past either, :class:`SSEOverflow` is raised: the
caller ends the reply with a clear error and keeps what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass


class SSEOverflow(ValueError):
    """A line or an event is larger than the decoder's bound; the stream cannot be trusted further."""


@dataclass(slots=True)
class SSEEvent:
    """One dispatched server-sent event (not frozen: it is built once per chunk on the hot path)."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far.

    Call :meth:`flush` at end of stream: a final event that lacks its closing
    blank line (some servers omit it) is still delivered.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_id",
        "_last_id",
        "_pending",
        "_pending_size",
        "_retry",
        "_skip_lf",
        "comments",
    )

    #: Bytes one line may take (a real chunk is a few hundred bytes; a big tool-call argument, some kilobytes).
    max_line = 8 * 1024 * 1024
    #: Bytes of ``data`` one event may gather over several lines.
    max_event = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skip_lf = False
        self._data: list[str] = []
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None
        #: Number of comment lines seen (keep-alives); lets callers show "waiting".
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` and return every event it completes."""
        if self._skip_lf and chunk:
            # The previous chunk ended in CR; an LF here belongs to that CRLF.
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
            self._skip_lf = False
        if self._pending:
            if b"\n" not in chunk and b"\r" not in chunk:
                # Still the same unfinished line: keep the piece, join once at its end (linear, not quadratic).
                self._hold(chunk)
                return []
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
        if not chunk:
            return []
        lines = chunk.splitlines()
        tail = chunk[-1:]
        if tail == b"\r":
            self._skip_lf = True
        elif tail != b"\n":
            self._hold(lines.pop())
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            # Hot path, inlined: DeepSeek sends "data: {...}" then a blank line.
            if not line:
                if data:
                    if self._event is None and self._id is None and self._retry is None and len(data) == 1:
                        events.append(SSEEvent(data[0], "message", self._last_id))
                        data.clear()
                    else:
                        self._dispatch(events)
                else:
                    self._dispatch(events)
            elif line[:6] == b"data: ":
                if data:  # a multi-line event (rare): bound its total size
                    self._grow(len(line))
                data.append(line[6:].decode("utf-8", "replace"))
            else:
                self._line(line, events)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: treat any unterminated line and event as complete."""
        events: list[SSEEvent] = []
        if self._pending:
            line = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
            self._line(line, events)
        self._line(b"", events)
        return events

    def _hold(self, piece: bytes) -> None:
        """Keep a piece of an unfinished line, within :attr:`max_line`."""
        self._pending_size += len(piece)
        if self._pending_size > self.max_line:
            self._pending = []
            self._pending_size = 0
            raise SSEOverflow(f"a line longer than {self.max_line:,} bytes")
        if piece:
            self._pending.append(piece)

    def _grow(self, size: int) -> None:
        self._data_size += size
        if self._data_size > self.max_event:
            self._data.clear()
            self._data_size = 0
            raise SSEOverflow(f"an event larger than {self.max_event:,} bytes")

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[:1] == b":":
            self.comments += 1
            return
        line = raw.decode("utf-8", "replace")
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            if self._data:
                self._grow(len(raw))
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Unknown fields are ignored, as the specification says.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._id is not None:
            self._last_id = self._id
        if self._data:
            events.append(
                SSEEvent(
                    data="\n".join(self._data),
                    event=self._event or "message",
                    id=self._last_id,
                    retry=self._retry,
                )
            )
        self._data.clear()  # in place: feed() holds a reference to this list
        self._data_size = 0
        self._event = None
        self._id = None
        self._retry = None
