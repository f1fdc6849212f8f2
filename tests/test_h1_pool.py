"""The batch's lean HTTP/1.1 pool (client/h1.py) against real sockets on 127.0.0.1 that answer byte by byte.

Each test starts an ``asyncio`` server in the test's own loop whose answers are
written out literally (chunked, gzip, interim 1xx, cut short, silent, not
HTTP), so every framing rule and failure mapping is checked on the wire; the
TLS tests use a throw-away certificate made by ``openssl`` and a CONNECT proxy.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deepseek_magic.client.h1 import H1Pool, parse_target

Answer = Callable[["Seen"], Awaitable[bytes | None]]


@dataclass
class Seen:
    """What the server received: request heads (raw), bodies, and the connections they came on."""

    heads: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return head, await reader.readexactly(length)


class Final(bytes):
    """Bytes the server writes before it closes the connection."""


async def serve(answer: Answer, seen: Seen, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    """A server that answers each request with the bytes ``answer`` returns (``None``: hang up at once)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                seen.heads.append(request[0])
                seen.bodies.append(request[1])
                reply = await answer(seen)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if isinstance(reply, Final):
                    break
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)


def url_of(server: asyncio.Server, scheme: str = "http") -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"{scheme}://{host}:{port}/v1/chat/completions"


def fixed(data: bytes) -> Answer:
    async def answer(seen: Seen) -> bytes:
        return data

    return answer


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


async def fetch(pool: H1Pool, url: str, *, read_timeout: float = 5.0, proxy: str | None = None) -> tuple[Any, bytes]:
    response = await pool.request(
        "POST",
        url,
        {"Authorization": "Bearer sk-test"},
        b'{"q": 1}',
        connect_timeout=5,
        read_timeout=read_timeout,
        proxy=proxy,
    )
    parts = []
    while chunk := await response.read_some():
        parts.append(chunk)
    response.close()
    return response, b"".join(parts)


def plain_context() -> ssl.SSLContext:
    return ssl.create_default_context()


# ------------------------------------------------------------------ framing


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (ok(b'{"a": 1}'), b'{"a": 1}'),
        (b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{"a\r\n5;x=y\r\n": 1}\r\n0\r\n\r\n', b'{"a": 1}'),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nx-trailer: 1\r\n\r\n", b"hi"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after interim"), b"after interim"),
        (ok(gzip.compress(b"squeezed " * 50), "content-encoding: gzip"), b"squeezed " * 50),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
    ids=["content-length", "chunked", "trailers", "interim-1xx", "gzip", "no-content"],
)
def test_bodies_are_framed_as_sent(wire: bytes, body: bytes) -> None:
    async def main() -> tuple[int, bytes, Seen]:
        seen = Seen()
        server = await serve(fixed(wire), seen)
        pool = H1Pool(limit=4, ssl_context=plain_context())
        response, got = await fetch(pool, url_of(server))
        second, again = await fetch(pool, url_of(server))  # the connection is reused after a full read
        await pool.aclose()
        server.close()
        assert (second.status_code, again) == (response.status_code, got)
        return response.status_code, got, seen

    status, got, seen = run(main())
    assert got == body and status in (200, 204)
    assert seen.connections == 1 and len(seen.heads) == 2


def test_a_body_until_close_is_read_and_the_connection_not_reused() -> None:
    async def main() -> tuple[bytes, bytes, Seen]:
        seen = Seen()
        server = await serve(fixed(Final(b"HTTP/1.0 200 OK\r\n\r\nall of it")), seen)
        pool = H1Pool(limit=4, ssl_context=plain_context())
        _, got = await fetch(pool, url_of(server))
        _, again = await fetch(pool, url_of(server))
        await pool.aclose()
        server.close()
        return got, again, seen

    got, again, seen = run(main())
    assert got == again == b"all of it" and seen.connections == 2


def test_the_request_head_carries_host_length_and_the_callers_headers() -> None:
    async def main() -> Seen:
        seen = Seen()
        server = await serve(fixed(ok(b"{}")), seen)
        pool = H1Pool(limit=1, ssl_context=plain_context())
        await fetch(pool, url_of(server) + "?a=1")
        await pool.aclose()
        server.close()
        return seen

    seen = run(main())
    head = seen.heads[0]
    assert head.startswith("POST /v1/chat/completions?a=1 HTTP/1.1\r\n")
    assert "Host: 127.0.0.1:" in head and "Content-Length: 8" in head and "Authorization: Bearer sk-test" in head
    assert seen.bodies == [b'{"q": 1}']


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def main() -> Seen:
        seen = Seen()
        server = await serve(fixed(ok(b"{}")), seen)
        pool = H1Pool(limit=1, ssl_context=plain_context())
        with pytest.raises(httpx.LocalProtocolError):
            await pool.request("GET", url_of(server), {"X-A": "1\r\nX-B: 2"}, None, connect_timeout=5, read_timeout=5)
        await pool.aclose()
        server.close()
        return seen

    assert run(main()).heads == []


# ------------------------------------------------------------------ failures


def test_a_refused_connection_is_a_connect_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        pool = H1Pool(limit=1, ssl_context=plain_context())
        try:
            await fetch(pool, f"http://127.0.0.1:{port}/x")
        finally:
            await pool.aclose()

    with pytest.raises(httpx.ConnectError):
        run(main())


def test_no_frame_of_a_failed_request_holds_the_key() -> None:
    """A failed connect leaves a traceback (a Verbose one shows every frame's locals): once the caller has dropped
    its header dict (as the batch does), no frame of the pool may still hold the key in a request head."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "sk-h1-canary-7f3a"

    async def main() -> BaseException:
        pool = H1Pool(limit=1, ssl_context=plain_context())
        headers = {"Authorization": f"Bearer {secret}"}
        try:
            await pool.request("POST", f"http://127.0.0.1:{port}/x", headers, b"{}", connect_timeout=5, read_timeout=5)
        except httpx.ConnectError as exc:
            return exc
        finally:
            headers.clear()
            await pool.aclose()
        raise AssertionError("the connection was not refused")

    error = run(main())
    frames = []
    trace = error.__traceback__
    while trace is not None:
        frames.append(trace.tb_frame)
        trace = trace.tb_next
    pool_frames = [frame for frame in frames if frame.f_code.co_filename.endswith("h1.py")]
    shown = [f"{frame.f_code.co_name}: {frame.f_locals!r}" for frame in pool_frames]
    assert any(text.startswith("request:") for text in shown)  # the pool's request frame is among them
    assert [text for text in shown if secret in text] == []


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (None, httpx.RemoteProtocolError),  # hung up after the request: it may have been billed
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError),
        (Final(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"), httpx.ReadError),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", httpx.ReadError),
        (ok(b"not gzip at all", "content-encoding: gzip"), httpx.ReadError),
    ],
    ids=["hang-up", "not-http", "cut-body", "bad-chunk", "bad-gzip"],
)
def test_broken_answers_map_to_the_httpx_errors_the_flow_classifies(wire: bytes | None, error: type[Exception]) -> None:
    async def answer(seen: Seen) -> bytes | None:
        return wire

    async def main() -> None:
        server = await serve(answer, Seen())
        pool = H1Pool(limit=1, ssl_context=plain_context())
        try:
            await fetch(pool, url_of(server))
        finally:
            await pool.aclose()
            server.close()

    with pytest.raises(error):
        run(main())


def test_silence_after_sending_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async def silent(seen: Seen) -> bytes | None:
        await asyncio.sleep(3)
        return ok(b"late")

    async def main() -> tuple[float, int]:
        seen = Seen()
        server = await serve(silent, seen)
        pool = H1Pool(limit=1, ssl_context=plain_context())
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await fetch(pool, url_of(server), read_timeout=0.3)
        waited = loop.time() - started
        idle = sum(len(v) for v in pool._idle.values())
        await pool.aclose()
        server.close()
        return waited, idle

    waited, idle = run(main())
    assert 0.25 < waited < 2.0 and idle == 0


def test_an_idle_connection_older_than_the_keepalive_is_not_reused() -> None:
    async def main() -> Seen:
        seen = Seen()
        server = await serve(fixed(ok(b"{}")), seen)
        pool = H1Pool(limit=2, ssl_context=plain_context(), keepalive=0.2)
        await fetch(pool, url_of(server))
        await fetch(pool, url_of(server))  # reused at once
        await asyncio.sleep(0.3)
        await fetch(pool, url_of(server))  # too old: a new connection
        await pool.aclose()
        server.close()
        return seen

    seen = run(main())
    assert seen.connections == 2 and len(seen.heads) == 3


# ------------------------------------------------------------------ proxies and TLS


def test_targets_and_proxies_are_parsed() -> None:
    direct = parse_target("https://api.deepseek.com/chat/completions?x=1", None)
    assert (direct.scheme, direct.host, direct.port, direct.target) == (
        "https",
        "api.deepseek.com",
        443,
        "/chat/completions?x=1",
    )
    via = parse_target("http://user:pw@example.test:8080/v1", "http://proxy.test:3128")
    assert via.target == "http://example.test:8080/v1" and via.proxy is not None  # absolute-form, no credentials
    with pytest.raises(httpx.UnsupportedProtocol):
        parse_target("ftp://example.test/x", None)
    with pytest.raises(httpx.UnsupportedProtocol):
        parse_target("https://example.test/x", "socks5://proxy.test:1080")


def test_an_http_target_goes_through_an_http_proxy_in_absolute_form() -> None:
    async def main() -> Seen:
        seen = Seen()
        proxy = await serve(fixed(ok(b"via proxy")), seen)  # the "proxy" answers itself: what it got is the point
        pool = H1Pool(limit=1, ssl_context=plain_context())
        host, port = proxy.sockets[0].getsockname()[:2]
        _, got = await fetch(pool, "http://origin.test:9000/v1/chat", proxy=f"http://me:secret@{host}:{port}")
        assert got == b"via proxy"
        await pool.aclose()
        proxy.close()
        return seen

    head = run(main()).heads[0]
    assert head.startswith("POST http://origin.test:9000/v1/chat HTTP/1.1\r\n")
    assert "Host: origin.test:9000" in head and "Proxy-Authorization: Basic bWU6c2VjcmV0" in head


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:  # pragma: no cover - Debian and the CI image have it
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context()
    client.load_verify_locations(cert)
    return server, client


def test_https_checks_the_certificate(certificate: tuple[Path, Path]) -> None:
    server_tls, client_tls = tls_contexts(certificate)

    async def main(context: ssl.SSLContext) -> bytes:
        seen = Seen()
        server = await serve(fixed(ok(b"secret answer")), seen, tls=server_tls)
        pool = H1Pool(limit=1, ssl_context=context)
        try:
            return (await fetch(pool, url_of(server, "https")))[1]
        finally:
            await pool.aclose()
            server.close()

    assert run(main(client_tls)) == b"secret answer"
    with pytest.raises(httpx.ConnectError):  # the system roots do not know the throw-away certificate
        run(main(plain_context()))


def test_https_through_a_proxy_uses_a_connect_tunnel(certificate: tuple[Path, Path]) -> None:
    server_tls, client_tls = tls_contexts(certificate)
    connects: list[str] = []

    async def tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        connects.append(head)
        port = head.split(" ")[1].rsplit(":", 1)[1]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer), return_exceptions=True)

    async def main() -> bytes:
        seen = Seen()
        origin = await serve(fixed(ok(b"tunnelled")), seen, tls=server_tls)
        proxy = await asyncio.start_server(tunnel, "127.0.0.1", 0)
        pool = H1Pool(limit=1, ssl_context=client_tls)
        port = origin.sockets[0].getsockname()[1]
        proxy_port = proxy.sockets[0].getsockname()[1]
        try:
            _, got = await fetch(pool, f"https://localhost:{port}/v1/chat", proxy=f"http://127.0.0.1:{proxy_port}")
            assert seen.heads[0].startswith("POST /v1/chat HTTP/1.1\r\n")  # origin-form inside the tunnel
            return got
        finally:
            await pool.aclose()
            origin.close()
            proxy.close()

    assert run(main()) == b"tunnelled"
    assert connects[0].startswith("CONNECT localhost:") and "Bearer" not in connects[0]
