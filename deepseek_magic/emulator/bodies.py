"""Reading a request body with a size cap, shared by every emulated protocol.

The cap is checked against ``Content-Length`` first and again while reading,
so a client that lies about (or omits) the length cannot make the server
buffer more than the cap.
"""

from __future__ import annotations

from starlette.requests import Request


async def read_capped(request: Request, cap: int, too_large: Exception) -> bytes:
    """The whole body, or ``too_large`` raised once more than ``cap`` bytes are seen."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > cap:
            raise too_large
        parts.append(part)
    return b"".join(parts)
