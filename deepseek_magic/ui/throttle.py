"""Coalescing of view updates inside the streaming loop.

Loop-scheduled timers do not fire while a cell blocks, so the decision is
taken on each event: the first update goes out at once, later ones at most
every ``interval`` seconds, and the caller always flushes at the end.
"""

from __future__ import annotations

import time


class Throttle:
    """Says whether an update is due now."""

    __slots__ = ("_last", "interval")

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False
