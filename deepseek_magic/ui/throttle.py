"""Coalescing of view updates inside the streaming loop, with a trailing flush.

Loop-scheduled timers do not fire while a cell blocks, so the decision is
taken on the cell's own thread: on each event the first update goes out at
once, later ones at most every ``interval`` seconds. An event that arrives
inside an interval leaves the throttle *pending*; the stream's reader calls
the view's ``tick`` every few hundredths of a second while the network is
silent (:mod:`deepseek_magic.client.chunk_reader`), and :meth:`Throttle.trailing`
says when that pending update is due, so a token followed by a pause is shown
within about ``interval`` seconds instead of when the next token comes. The
caller always flushes at the end.
"""

from __future__ import annotations

import time


class Throttle:
    """Says whether an update is due now, and whether one is waiting."""

    __slots__ = ("_last", "interval", "pending")

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._last: float | None = None
        #: Something changed since the last update and has not been shown yet.
        self.pending = False

    def due(self) -> bool:
        """Something new is waiting: True when it should be shown now (else it stays pending)."""
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            self.pending = False
            return True
        self.pending = True
        return False

    def trailing(self) -> bool:
        """On a tick: True when a pending update has become due (the trailing flush)."""
        return self.pending and self.due()

    def sent(self) -> None:
        """An update went out for another reason (a status change, a tool result): nothing is pending."""
        self._last = time.monotonic()
        self.pending = False
