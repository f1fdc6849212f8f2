"""A response body read on a helper thread, so the reading thread can act while the network is silent.

The magics read a stream on the kernel's main thread: that is where the
kernel's Interrupt (``KeyboardInterrupt``) lands and where display updates
belong (an update made from another thread may lose its cell). But a blocking
socket read hands the thread back only when bytes arrive, so a view that
coalesces updates could not show a token that came just before a pause (a
model thinking, a tool call being written, a queue) until the next one came.

:class:`ChunkReader` moves only the blocking read to a daemon thread. Chunks
come back through a queue; the main thread waits on it in short slices and
calls ``on_idle`` between them (and at least every slice while chunks keep
coming), so a view can flush what it holds. Every exception of the read is
raised on the main thread, exactly as the plain read would raise it.

Waiting on a queue is interruptible, so Ctrl-C still lands on the main thread
at once. On the way out (:meth:`ChunkReader.stop`) the socket is shut down,
which wakes the blocked read and tells the server at once that nobody is
listening (a stream stops being generated, and billed); only then is the
response closed, by the caller, on its own thread.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

#: Called on the reading thread while a stream is silent.
IdleCallback = Callable[[], object]
#: Longest wait for a chunk before ``on_idle`` is called (seconds): a view flushes at most this late.
IDLE_TICK = 0.02
#: How long :meth:`ChunkReader.stop` waits for the reading thread to end (it is a daemon either way).
STOP_WAIT = 2.0

_END = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChunkReader:
    """Iterates over ``chunks`` (read on a daemon thread), calling ``on_idle`` while waiting."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_idle: IdleCallback,
        *,
        network_stream: Any = None,
        tick: float = IDLE_TICK,
    ) -> None:
        self._chunks = chunks
        self._on_idle = on_idle
        self._network_stream = network_stream
        self._tick = tick
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopping = False
        self._ended = False
        self._idle_at = time.monotonic()
        self._thread = threading.Thread(target=self._read, name="deepseek-magic-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                self._queue.put(chunk)
                if self._stopping:
                    return
        except BaseException as exc:  # handed to the main thread, which raises it as the plain read would
            self._queue.put(_Failure(exc))
        else:
            self._queue.put(_END)

    def __iter__(self) -> ChunkReader:
        return self

    def __next__(self) -> bytes:
        while True:
            try:
                item = self._queue.get(timeout=self._tick)
            except queue.Empty:
                self._idle()
                continue
            if time.monotonic() - self._idle_at >= self._tick:
                self._idle()  # chunks without events (keep-alives) must not starve the trailing flush
            if item is _END:
                self._ended = True
                raise StopIteration
            if isinstance(item, _Failure):
                self._ended = True
                raise item.error
            assert isinstance(item, bytes)
            return item

    def _idle(self) -> None:
        self._idle_at = time.monotonic()
        self._on_idle()

    def stop(self) -> None:
        """Wake and end the reading thread (idempotent); the caller closes the response afterwards."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        sock = _socket_of(self._network_stream)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed or never connected: the read ends by itself
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(STOP_WAIT)


def _socket_of(network_stream: Any) -> socket.socket | None:
    """The socket under an httpcore network stream (``None`` for in-memory transports and the unknown)."""
    get_extra_info = getattr(network_stream, "get_extra_info", None)
    if get_extra_info is None:
        return None
    try:
        sock = get_extra_info("socket")
    except Exception:
        return None
    return sock if isinstance(sock, socket.socket) else None
