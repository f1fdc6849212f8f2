"""Slots and back-off shared by every part of one batch, when the parts run apart (Dask partitions).

Why: an account's concurrency limit (DeepSeek: 2,500 requests in flight on
Flash, 500 on Pro) holds for the account, not for one process. When a batch
is split into partitions that run at the same time, each partition's own
limiter would multiply the cap by the number of partitions running and turn
the surplus into 429s. A :class:`SharedGate` is the one cap they share: a
partition *takes* slots before sending (at least one, waiting for it; then as
many more as are free, without waiting), gives back the ones it no longer
needs, and publishes a 429's "retry after" moment so that every partition
waits it out, not only the one that was refused.

Two gates: :class:`LocalGate` (threads of one process: Dask's threaded
scheduler), found by name through :func:`local_gate`, and the cluster gate in
:mod:`deepseek_magic.conversation.dask_batch` (a ``distributed.Semaphore`` and
a ``distributed.Variable``), which needs a cluster. Their methods block, so the
batch calls them from a helper thread, never on its event loop.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class SharedGate(Protocol):
    """The cap and the pause that several partitions of one batch share."""

    def take(self, wanted: int, wait: float | None) -> int:
        """Take up to ``wanted`` slots: wait up to ``wait`` seconds (``None``: as long as it takes) for the first,
        then take what else is free without waiting; returns how many were taken (0 when the wait ran out)."""
        ...

    def give(self, count: int) -> None:
        """Give back ``count`` slots taken earlier."""
        ...

    def paused_until(self) -> float:
        """The wall-clock moment (``time.time()``) before which no partition should send; 0 when none."""
        ...

    def pause(self, until: float) -> None:
        """Ask every partition to wait until ``until`` (a 429's ``Retry-After``); a later pause wins."""
        ...


class LocalGate:
    """A :class:`SharedGate` for the threads of one process."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("the cap must be at least 1")
        self.cap = cap
        self.free = cap
        self._until = 0.0
        self._changed = threading.Condition()

    def take(self, wanted: int, wait: float | None) -> int:
        if wanted <= 0:
            return 0
        with self._changed:
            if not self._changed.wait_for(lambda: self.free > 0, timeout=wait):
                return 0
            taken = min(wanted, self.free)
            self.free -= taken
            return taken

    def give(self, count: int) -> None:
        if count <= 0:
            return
        with self._changed:
            self.free = min(self.cap, self.free + count)
            self._changed.notify_all()

    def paused_until(self) -> float:
        return self._until

    def pause(self, until: float) -> None:
        with self._changed:
            self._until = max(self._until, until)


_local: dict[str, LocalGate] = {}
_local_lock = threading.Lock()


def local_gate(name: str, cap: int) -> LocalGate:
    """The process's gate called ``name`` (made with ``cap`` slots on first use)."""
    with _local_lock:
        gate = _local.get(name)
        if gate is None:
            gate = _local[name] = LocalGate(cap)
        return gate


def now() -> float:
    """Wall-clock time, as pauses are shared between machines (``time.time()``)."""
    return time.time()


__all__ = ["LocalGate", "SharedGate", "local_gate", "now"]
