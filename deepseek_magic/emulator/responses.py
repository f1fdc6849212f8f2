"""Execute a wire plan as an ASGI response.

Headers go out first, then each action runs in order.  An :class:`~.wire.Abort`
(or the response outliving ``max_response_seconds``) raises
:class:`DropConnection` after the headers were sent; uvicorn answers that by
closing the transport without the terminating chunk, so the client sees a real
incomplete body (httpx: ``RemoteProtocolError``), not a clean end.  A client
disconnect cancels the plan at once, so stalls never outlive their client, and a
server shutdown aborts open responses promptly instead of waiting for uvicorn to
cancel them.
"""

from __future__ import annotations

import logging
import math
import threading

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from deepseek_magic.emulator.wire import Abort, Action, Pace, Wait, Write

#: How often an open response checks whether the server is shutting down.
_CLOSING_POLL = 0.05


class DropConnection(Exception):
    """Raised on purpose to make the server abort the connection mid-body."""


class _QuietDrops(logging.Filter):
    """Keep deliberate drops out of uvicorn's error log; real errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DropConnection)


def install_log_filter() -> None:
    """Add the drop filter to uvicorn's error logger once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class PlannedResponse(Response):
    """A response whose body follows a list of timed actions."""

    def __init__(
        self,
        actions: list[Action],
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str,
        deadline: float,
        closing: threading.Event,
    ) -> None:
        # Like StreamingResponse: no ``body`` attribute, so no Content-Length (chunked).
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self.actions = actions
        self.deadline = deadline
        self.closing = closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        outcome = {"completed": False}
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def run() -> None:
                with anyio.move_on_after(self.deadline):
                    outcome["completed"] = await self._run(send)
                group.cancel_scope.cancel()

            async def watch_closing() -> None:
                while not self.closing.is_set():
                    await anyio.sleep(_CLOSING_POLL)
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            group.start_soon(watch_closing)
            group.start_soon(run)
        if not outcome["completed"]:
            raise DropConnection("emulated connection drop")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _run(self, send: Send) -> bool:
        """Run the actions; False when the plan ends in an abort."""
        for action in self.actions:
            if isinstance(action, Write):
                await _write(send, action.data)
            elif isinstance(action, Wait):
                await _wait(send, action)
            elif isinstance(action, Pace):
                if action.seconds > 0:
                    await anyio.sleep(action.seconds)
            elif isinstance(action, Abort):
                return False
        return True


#: Writes at least this large give the loop a turn afterwards, so a client that hung up is noticed
#: before the next megabyte of a flood goes to a dead socket.
_BIG_WRITE = 64 * 1024


async def _write(send: Send, data: bytes) -> None:
    if data:
        await send({"type": "http.response.body", "body": data, "more_body": True})
        if len(data) >= _BIG_WRITE:
            await anyio.sleep(0)


async def _wait(send: Send, action: Wait) -> None:
    """Sleep, sending the filler at each full interval that ends before the wait does."""
    if not action.filler or action.interval <= 0:
        await anyio.sleep(action.seconds)
        return
    fillers = max(math.ceil(action.seconds / action.interval) - 1, 0)
    for _ in range(fillers):
        await anyio.sleep(action.interval)
        await _write(send, action.filler)
    await anyio.sleep(action.seconds - fillers * action.interval)
