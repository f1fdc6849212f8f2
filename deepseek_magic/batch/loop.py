"""The batch's event loop: one loop in a daemon thread, shared by the process, fed from other threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

# ------------------------------------------------------------------ the loop thread


T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread, for work submitted from other threads.

    One loop for every batch of the process: creating a loop per call would
    be cheap, but a long-lived one keeps the code honest about never blocking
    it, and the kernel's own loop is never touched.
    """

    def __init__(self, name: str = "deepseek-magic-batch") -> None:
        self.loop = asyncio.new_event_loop()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        """False after :meth:`close`, and in a forked child (the thread did not come along)."""
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; the future's ``cancel()`` cancels the task."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("cannot wait for the batch loop from inside it; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The process's batch loop, started on first use (and again after a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = LoopThread()
        return _shared
