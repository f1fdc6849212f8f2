"""A minimal chat-completions server that answers every request after a fixed delay.

Why not the bundled emulator: it generates an emulated reply per request
(tokens, usage, prompt analysis) on starlette + uvicorn, about a hundred
requests a second on this machine, while a batch at DeepSeek's account limit
needs 2,500 requests in flight and some 1,250 answers a second. This server
does as little as a server can: an ``asyncio.Protocol`` per connection,
HTTP/1.1 keep-alive, a fixed DeepSeek-shaped JSON body (non-streamed) whose
content echoes the last message, so the client under test is what is measured.

It also counts the requests in flight and prints the peak on exit, so a
benchmark can check that a cap held. It listens on 127.0.0.1 only, prints
``http://127.0.0.1:PORT`` as its first stdout line, and stops by itself when
its standard input closes (its parent ended) or after ``--lifetime`` seconds.

    python benchmarks/delay_server.py --delay 2.0 [--lifetime 900]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import threading

HOST = "127.0.0.1"


class _State:
    in_flight = 0
    peak = 0
    served = 0


def _reply(content: str) -> bytes:
    body = {
        "id": "bench",
        "object": "chat.completion",
        "created": 0,
        "model": "deepseek-v4-flash",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32},
    }
    return json.dumps(body).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are read, and each is answered ``delay`` seconds after it arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            _State.in_flight += 1
            _State.peak = max(_State.peak, _State.in_flight)
            self.loop.call_later(self.delay, self._answer, body)

    def _answer(self, body: bytes) -> None:
        _State.in_flight -= 1
        _State.served += 1
        try:
            messages = json.loads(body).get("messages") or [{}]
            content = f"[bench] {messages[-1].get('content', '')}"
        except ValueError:
            content = "[bench]"
        payload = _reply(content)
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: keep-alive\r\n\r\n"
        ).encode()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def raise_fd_limit(wanted: int = 16384) -> None:
    """Raise the soft limit on open files towards ``wanted`` (2,500 connections need more than 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def serve(delay: float, lifetime: float) -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(delay), HOST, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"http://{HOST}:{port}", flush=True)
    stop = asyncio.Event()

    def watch_stdin() -> None:  # the parent closing our stdin (or dying) stops the server
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), lifetime)
    server.close()
    print(json.dumps({"peak_in_flight": _State.peak, "served": _State.served}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=2.0, help="seconds before each answer")
    parser.add_argument("--lifetime", type=float, default=900.0, help="stop after this many seconds regardless")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.delay, args.lifetime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
