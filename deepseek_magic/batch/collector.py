"""Automatic garbage collection paused while a batch runs, with a full collection every few thousand rows.

Why: a batch at account scale holds thousands of rows in flight, each with its
request, its connection's buffers and its planned exchange, and allocates
briskly; CPython's automatic collector then keeps rescanning that whole live
set, which costs a third of the batch's CPU at 2,500 rows in flight
(``benchmarks/batch_throughput.py``) and grows with the concurrency. Paused,
the garbage that does form (reference cycles from futures, exceptions) is
still collected: :func:`collect_now` every :data:`COLLECT_EVERY` finished rows (the young generations),
and the collector is switched back on when the last running batch ends (it
stays off only if it was off before). The pause is process-wide, as the
collector is; batches running in several threads share it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Finished rows between two full collections while the automatic collector is paused.
COLLECT_EVERY = 5000

_lock = threading.Lock()
_running = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause automatic collection for the ``with`` block (nested and concurrent blocks share one pause)."""
    global _running, _was_enabled
    with _lock:
        if _running == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _was_enabled:
                gc.enable()


def collect_now(done: int, total: int) -> None:
    """A young-generation collection when ``done`` finished rows reach a multiple of :data:`COLLECT_EVERY`.

    Paused, the collector promotes nothing, so everything the batch allocated
    since the last collection sits in the youngest generation: collecting
    generations 0 and 1 finds the batch's garbage cycles without rescanning the
    process's old objects (a full collection there stalls every row in flight
    for a third of a second in a kernel with pandas loaded). Not after the last
    row: the batch is over and the automatic collector takes over again.
    """
    if done and done < total and done % COLLECT_EVERY == 0:
        gc.collect(1)


def settle_planned() -> None:
    """Collect the young generations once every row is planned, while the first requests are out.

    The planned rows survive it and move to the old generation, so the
    collections during the run (:func:`collect_now`) scan only what the run
    allocated since, not every planned row again; done here, the scan costs
    nothing, as the loop is waiting on the server anyway.
    """
    gc.collect(1)


__all__ = ["COLLECT_EVERY", "collect_now", "collector_paused", "settle_planned"]
