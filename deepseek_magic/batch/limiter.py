"""How many rows are in flight: a semaphore that halves on 429 and creeps back up (AIMD)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Literal

# -------------------------------------------------------------------- the limiter


class AdaptiveLimiter:
    """A semaphore whose size adapts: halve on 429, creep back up on success (AIMD).

    Halving happens at most once per "round": a 429 for a request that was
    admitted before the last decrease says nothing new, so a burst of 429s
    from one wave of requests halves once, not down to 1. Each success adds
    ``1/limit``, i.e. about one slot per full round of successes, up to the
    starting size. Not thread-safe: it lives on the batch loop.
    """

    def __init__(self, limit: int, *, minimum: int = 1) -> None:
        if limit < 1:
            raise ValueError("the limit must be at least 1")
        self.maximum = limit
        self.minimum = max(1, min(minimum, limit))
        self._size = float(limit)
        self.in_flight = 0
        self.epoch = 0
        self.lowest = limit
        self.decreases = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Slots this process holds of a cap shared with others (a Dask batch's partitions); ``None``: no such cap.
        self.cap: int | None = None

    @property
    def target(self) -> int:
        """The size AIMD aims at, whatever a shared cap allows."""
        return max(self.minimum, int(self._size))

    @property
    def limit(self) -> int:
        target = self.target
        return target if self.cap is None else max(1, min(target, self.cap))

    def set_cap(self, cap: int | None) -> None:
        """Bound the limit by ``cap`` slots of a shared cap (see :mod:`.gate`); waiters get the slots it frees."""
        self.cap = cap
        self._wake()

    async def acquire(self) -> int:
        """Wait for a slot; returns the ticket to hand back to :meth:`release`."""
        while self.in_flight >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # we were chosen but will not use the slot: pass it on
                raise
            # A woken waiter was popped by _wake; a cancelled one stays in the deque and is skipped there
            # (no O(n) remove per acquire: at 2,500 rows in flight the queue can hold thousands).
        self.in_flight += 1
        return self.epoch

    def release(self, ticket: int, outcome: Literal["ok", "rate_limited", "other"] = "other") -> None:
        """Give the slot back, telling how the request went."""
        self.in_flight -= 1
        if outcome == "rate_limited":
            if ticket == self.epoch:
                self._size = max(float(self.minimum), self._size / 2)
                self.epoch += 1
                self.decreases += 1
                self.lowest = min(self.lowest, self.limit)
        elif outcome == "ok":
            self._size = min(float(self.maximum), self._size + 1.0 / self._size)
        self._wake()

    def _wake(self) -> None:
        """Wake as many waiters, oldest first, as there are free slots (skipping cancelled ones)."""
        free = self.limit - self.in_flight
        waiters = self._waiters
        while free > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


# ---------------------------------------------------------------------- one batch
