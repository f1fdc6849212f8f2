"""A lean HTTP/1.1 keep-alive pool on asyncio protocols: the batch's transport at account scale.

Why not aiohttp or httpx here: at 2,500 requests in flight (DeepSeek's limit
per account on Flash) the client's own CPU per request decides whether a batch
keeps pace with the server. Measured side by side on 2 cores against a server
that answers after 2 s (``benchmarks/batch_throughput.py``): a plain aiohttp
gather spends ~600 µs of CPU per request and runs at ~1.5× the ideal time, a
plain httpx gather falls apart (encode/httpcore#1035), while the whole batch
over this pool (planning, the flow, pricing and the DataFrame included) spends
~420 µs a row and runs at ~1.3×. A batch sends
small JSON bodies to one host and reads small JSON answers, so this module does
only that, with no layer it does not need: one protocol object per connection,
the response head parsed once, the body handed over as it arrives.

What it does: ``http://`` and ``https://`` (TLS with the caller's SSL context,
the server name checked), keep-alive reuse (an idle connection is dropped
after ``keepalive`` seconds, below common server timeouts, so a request is
never written into a connection the server is closing), ``Content-Length``,
chunked and until-close bodies, gzip/deflate bodies, ``1xx`` interim answers
skipped, ``HTTP(S)_PROXY`` through an ``http://`` proxy (absolute-form for
``http://`` targets, a ``CONNECT`` tunnel for ``https://`` ones, with the
proxy's credentials), a connect timeout, and a read timeout that bounds each
silence. It never follows redirects (the flow decides what a 3xx means).

Failures are raised as the httpx exceptions the flow classifies
(:mod:`.flow`), with the same meaning as on the httpx path: nothing was sent
(``ConnectError``, ``ConnectTimeout``: may be sent again); sent, then no
answer in time (``ReadTimeout``); sent, then the connection ended or the
answer is not HTTP (``RemoteProtocolError``: it may have been billed, so
never sent again); the body broke off (``ReadError``).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import urllib.parse
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import httpx

#: Seconds an idle connection is kept. Below the usual server keep-alive (uvicorn 5 s, nginx 75 s), so a
#: connection is dropped here before the server drops it under a request that would then be lost.
KEEPALIVE = 4.0
#: A response head larger than this is not HTTP we want to read.
MAX_HEAD = 64 * 1024
#: Body bytes buffered ahead of the reader before the socket is paused (a slow consumer of a long stream).
MAX_BUFFERED = 256 * 1024


@dataclass(frozen=True)
class Target:
    """Where a request goes: the origin, the request-target to write, and the proxy on the way (if any)."""

    scheme: str
    host: str
    port: int
    target: str
    proxy: urllib.parse.SplitResult | None

    @property
    def key(self) -> tuple[str, str, int, str | None]:
        """Connections are shared by requests with the same key (an https tunnel belongs to its target)."""
        proxy = self.proxy.geturl() if self.proxy is not None else None
        return (self.scheme, self.host, self.port, proxy)


def parse_target(url: str, proxy: str | None) -> Target:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    via = urllib.parse.urlsplit(proxy) if proxy else None
    if via is not None and (via.scheme != "http" or not via.hostname):
        raise httpx.UnsupportedProtocol(f"only http:// proxies are supported, not {via.scheme}://")
    if via is not None and parts.scheme == "http":  # a plain proxy wants the absolute URL
        path = f"http://{parts.netloc.rpartition('@')[2]}{path}"
    return Target(parts.scheme, parts.hostname, port, path, via)


_BAD_NAME = re.compile(r"[\r\n:\0 ]")
_BAD_VALUE = re.compile(r"[\r\n\0]")


def _check_headers(headers: Mapping[str, str]) -> None:
    """No header may smuggle a line break (or a NUL) into the head: refused before anything is sent."""
    if _BAD_NAME.search("".join(headers)) or _BAD_VALUE.search("".join(headers.values())):
        bad = next(name for name, value in headers.items() if _BAD_NAME.search(name) or _BAD_VALUE.search(value))
        raise httpx.LocalProtocolError(f"invalid character in header {bad[:40]!r}")


class Response:
    """One answer on a connection: status and headers at once, the body read as it arrives.

    ``headers`` has lower-case names (repeated headers joined by ``", "``).
    Call :meth:`close` when done: the connection goes back to the pool if the
    body was read to its end, and is closed otherwise.
    """

    __slots__ = ("_connection", "headers", "reason_phrase", "status_code")

    def __init__(self, connection: _Connection, status: int, reason: str, headers: dict[str, str]) -> None:
        self._connection: _Connection | None = connection
        self.status_code = status
        self.reason_phrase = reason
        self.headers: Mapping[str, str] = headers

    def __repr__(self) -> str:
        return f"<Response {self.status_code}>"

    async def read_some(self) -> bytes:
        """The body bytes that arrived since the last call (waiting for some); ``b""`` at the end."""
        connection = self._connection
        if connection is None:
            return b""
        return await connection.read_some()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.finish()


class _Connection(asyncio.Protocol):
    """One socket to one origin; answers one request at a time (no pipelining)."""

    def __init__(self, pool: H1Pool, key: tuple[str, str, int, str | None]) -> None:
        self.pool = pool
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False
        self.idle_since = 0.0
        self.read_timeout: float | None = None
        self.reset()

    def reset(self) -> None:
        """Ready for the next response on this connection."""
        self.head: tuple[int, str, dict[str, str]] | None = None
        self.head_only = False  # the answer to a CONNECT: no body, whatever its headers say
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.left = -1  # Content-Length bytes still to come; -1: chunked or until close
        self.chunked = False
        self.until_close = False
        self.complete = False
        self.reusable = True
        self.failure: httpx.TransportError | None = None
        self.decoder: zlib._Decompress | None = None
        self.paused = False

    # ---------------------------------------------------------------- protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._advance()
        except httpx.RemoteProtocolError as exc:
            self.failure = exc if self.head is None else httpx.ReadError(str(exc))
            self._abort()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        self.pool.forget(self)
        if self.head is not None and self.until_close and not self.complete and self.failure is None:
            self._done()
        elif not self.complete and self.failure is None:
            text = str(exc) if exc else "the server closed the connection"
            self.failure = httpx.RemoteProtocolError(text) if self.head is None else httpx.ReadError(text)
        self._wake()

    # ---------------------------------------------------------------- parsing

    def _advance(self) -> None:
        while self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("the response head is too large")
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            self._take_head(head)
        if self.chunked:
            self._take_chunks()
        elif self.left >= 0:
            size = min(self.left, len(self.buffer))
            if size:
                self._append(bytes(self.buffer[:size]))
                del self.buffer[:size]
                self.left -= size
            if self.left == 0:
                self._done()
        elif self.buffer:  # until close
            self._append(bytes(self.buffer))
            self.buffer.clear()

    def _take_head(self, text: str) -> None:
        lines = text.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise httpx.RemoteProtocolError(f"not an HTTP/1 answer: {lines[0][:80]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise httpx.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if 100 <= status < 200:  # 100 Continue and friends: the real answer follows
            return
        self.head = (status, reason, headers)
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0" or "close" in connection:
            self.reusable = False
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.decoder = zlib.decompressobj()
        if status in (204, 304) or self.head_only:
            self.left = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self.chunked = True
        elif "content-length" in headers:
            length = headers["content-length"].split(",")[0].strip()
            if not length.isdigit():
                raise httpx.RemoteProtocolError(f"bad Content-Length: {length[:40]!r}")
            self.left = int(length)
        else:
            self.until_close = True
            self.reusable = False

    def _take_chunks(self) -> None:
        buffer = self.buffer
        while not self.complete:
            if self.left > 0:
                size = min(self.left, len(buffer))
                if not size:
                    return
                self._append(bytes(buffer[:size]))
                del buffer[:size]
                self.left -= size
                continue
            if self.left == 0:  # the CRLF after a chunk's data
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise httpx.RemoteProtocolError("malformed chunked body")
                del buffer[:2]
                self.left = -1
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("malformed chunked body")
                return
            size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed chunk size") from None
            if size == 0:  # the last chunk; trailers (if any) end with an empty line
                if len(buffer) < end + 4:
                    return
                if buffer[end + 2 : end + 4] == b"\r\n":
                    del buffer[: end + 4]
                else:
                    trailers_end = buffer.find(b"\r\n\r\n", end + 2)
                    if trailers_end < 0:
                        return
                    del buffer[: trailers_end + 4]
                self._done()
                return
            del buffer[: end + 2]
            self.left = size

    def _append(self, data: bytes) -> None:
        if self.decoder is not None:
            try:
                data = self.decoder.decompress(data)
            except zlib.error as exc:
                raise httpx.RemoteProtocolError(f"a compressed body that does not decode: {exc}") from None
        if data:
            self.body.append(data)
            self.buffered += len(data)
            if self.buffered > MAX_BUFFERED and not self.paused and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True

    def _done(self) -> None:
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self.body.append(rest)
        self.complete = True
        if self.buffer:  # bytes after the answer: the server pipelines nothing we asked for
            self.reusable = False

    def _abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- the caller's side

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        """Until more bytes arrive or the connection ends; ``ReadTimeout`` after ``timeout`` s of silence."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if self.waiter is waiter:
                self.waiter = None

    def send(self, head: bytes, body: bytes | None) -> None:
        assert self.transport is not None
        self.reset()
        self.transport.write(head + body if body else head)

    async def read_head(self, timeout: float | None) -> Response:
        while self.head is None:
            if self.failure is not None:
                raise self.failure
            await self._wait(timeout)
        status, reason, headers = self.head
        return Response(self, status, reason, headers)

    async def read_some(self) -> bytes:
        while not self.body:
            if self.failure is not None:
                raise self.failure
            if self.complete:
                return b""
            try:
                await self._wait(self.read_timeout)
            except asyncio.TimeoutError:
                raise httpx.ReadTimeout(f"the body stopped for {self.read_timeout:g} s") from None
        data = b"".join(self.body) if len(self.body) > 1 else self.body[0]
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def finish(self) -> None:
        """The response is done with: back to the pool when it was read to the end, else closed."""
        if self.complete and not self.body and self.reusable and not self.lost and self.failure is None:
            self.pool.give_back(self)
        else:
            self._abort()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


class H1Pool:
    """Keep-alive HTTP/1.1 connections per origin (and proxy), for many requests in flight on one loop.

    The caller bounds how many requests run at once (the batch's concurrency);
    the pool keeps at most ``limit`` idle connections per origin and opens one
    whenever none is idle. Open and close it on the loop that uses it.
    """

    def __init__(self, *, limit: int, ssl_context: ssl.SSLContext, keepalive: float = KEEPALIVE) -> None:
        self.limit = limit
        self.ssl_context = ssl_context
        self.keepalive = keepalive
        self._idle: dict[tuple[str, str, int, str | None], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._targets: dict[tuple[str, str | None], Target] = {}  # a batch sends to one URL thousands of times
        self._closed = False
        #: Requests written so far (the batch plans its later rows once the first ones are out).
        self.sent = 0

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        proxy: str | None = None,
    ) -> Response:
        """Send one request and return its answer once the head has arrived (the body is read from it)."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        target = self._targets.get((url, proxy))
        if target is None:
            target = self._targets[(url, proxy)] = parse_target(url, proxy)
        _check_headers(headers)
        connection = await self._connection(target, connect_timeout)
        # The head holds the key: built and written with no await between, so no suspended or failed frame of
        # this coroutine (a traceback's locals) still holds it.
        lines = [f"{method} {target.target} HTTP/1.1", f"Host: {_host_header(target)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if not any(name.lower() == "accept-encoding" for name in headers):
            lines.append("Accept-Encoding: gzip, deflate")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body else 0}")
        if target.proxy is not None and target.scheme == "http":
            lines += _proxy_auth(target.proxy)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        lines.clear()
        connection.read_timeout = read_timeout
        connection.send(head, body)
        self.sent += 1
        del head
        try:
            return await connection.read_head(read_timeout)
        except asyncio.TimeoutError:
            connection._abort()
            raise httpx.ReadTimeout(f"no answer within {read_timeout:g} s") from None
        except BaseException:
            connection._abort()
            raise

    async def _connection(self, target: Target, timeout: float | None) -> _Connection:
        idle = self._idle.get(target.key)
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if (
                not connection.lost
                and now - connection.idle_since < self.keepalive
                and connection.transport
                and (not connection.transport.is_closing())
            ):
                return connection
            connection._abort()
        try:
            return await asyncio.wait_for(self._open(target), timeout)
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"could not connect within {timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None

    async def _open(self, target: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        via = target.proxy
        host, port = (via.hostname or "", via.port or 80) if via is not None else (target.host, target.port)
        tls_now = target.scheme == "https" and via is None
        _, connection = await loop.create_connection(
            lambda: _Connection(self, target.key),
            host,
            port,
            ssl=self.ssl_context if tls_now else None,
            server_hostname=target.host if tls_now else None,
        )
        self._all.add(connection)
        if via is not None and target.scheme == "https":
            await self._tunnel(connection, target)
        return connection

    async def _tunnel(self, connection: _Connection, target: Target) -> None:
        """CONNECT through the proxy, then TLS to the target inside the tunnel."""
        assert target.proxy is not None and connection.transport is not None
        authority = f"{target.host}:{target.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *_proxy_auth(target.proxy)]
        connection.send(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), None)
        connection.head_only = True  # set after send(), which resets; nothing can arrive before we wait
        answer = await connection.read_head(None)
        if answer.status_code != 200:
            connection._abort()
            raise OSError(f"the proxy refused the tunnel: {answer.status_code} {answer.reason_phrase}")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            connection.transport, connection, self.ssl_context, server_hostname=target.host
        )
        if transport is None:
            raise OSError("TLS through the proxy tunnel did not start")
        connection.transport = transport
        connection.reset()

    def give_back(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if self._closed or len(idle) >= self.limit:
            connection._abort()
            return
        connection.idle_since = connection.loop.time()
        idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        self._all.discard(connection)

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._all):
            if connection.transport is not None:
                connection.transport.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing on this loop


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def _proxy_auth(proxy: urllib.parse.SplitResult) -> list[str]:
    if proxy.username is None:
        return []
    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return [f"Proxy-Authorization: Basic {token}"]


__all__ = ["KEEPALIVE", "H1Pool", "Response"]
