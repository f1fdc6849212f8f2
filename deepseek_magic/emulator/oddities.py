"""Answers that are not replies: what proxies, wrong base URLs and dying servers send instead.

Why here and not in :mod:`.wire`: these never reach the chat logic. A proxy's
HTML page, a redirect, a connection closed right after the request was read,
an enormous error body: each is decided from the fault alone, so the client
can be tested against what it meets outside the happy path.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from deepseek_magic.emulator.faults import Fault
from deepseek_magic.emulator.responses import DropConnection, PlannedResponse
from deepseek_magic.emulator.wire import Abort, Action, Write, flood

#: Where ``redirect=1`` points: a host that does not resolve (``.invalid`` is reserved for that).
REDIRECT_TARGET = "https://moved.invalid/v1/chat/completions"
PROXY_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The proxy could not reach the upstream server.</p>"
    b"<hr><address>emulated proxy</address></body></html>\n"
)
#: The scope key under which :class:`EmulatorApp` keeps the connection's transport.
TRANSPORT_KEY = "emulator.transport"


class EmulatorApp(Starlette):
    """Starlette, remembering the server connection of each request so a fault can close it outright."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's send is a bound method of the connection's request cycle, which holds the transport.
        scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        await super().__call__(scope, receive, send)


class CloseAfterRequest(Response):
    """Close the connection without sending a byte: the request was read, the answer never comes."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport: Any = scope.get(TRANSPORT_KEY)
        if transport is not None:
            transport.abort()
        raise DropConnection("emulated close after the request")


def odd_answer(fault: Fault, *, closing: threading.Event, deadline: float) -> Response | None:
    """The non-reply a fault asks for, or ``None`` when the request gets a real answer."""
    if fault.close_after_request:
        return CloseAfterRequest()
    if fault.html_200:
        return Response(PROXY_PAGE, status_code=200, media_type="text/html; charset=utf-8")
    if fault.redirect:
        return Response(
            PROXY_PAGE, status_code=301, media_type="text/html; charset=utf-8", headers={"Location": REDIRECT_TARGET}
        )
    if fault.huge_error_body:
        status = fault.status or 500
        actions: list[Action] = [Write(b'{"error": {"message": "'), *flood(fault.huge_error_body), Abort()]
        return PlannedResponse(
            actions, status_code=status, media_type="application/json", deadline=deadline, closing=closing
        )
    return None
