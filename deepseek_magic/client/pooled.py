"""The flow's steps performed with aiohttp: the batch's loop, for thousands of requests in flight.

Why not httpx here: with 2,500 requests in flight (DeepSeek's per-account
limit on Flash) httpcore's pool does work proportional to connections ×
waiting requests on every event (encode/httpcore#1035), and httpx's client
layer adds some 300 µs of CPU per request on top; a plain ``httpx.AsyncClient``
gather at concurrency 1,000 runs at 12× the ideal time, while aiohttp's
connector hands out keep-alive connections in O(1) and a plain aiohttp gather
stays near the ideal (``benchmarks/batch_throughput.py`` measures both in the
same run). Every decision is still the flow's (:mod:`.flow`): what to retry,
what a status means, how much of a body to read; this module only moves bytes
and translates aiohttp's failures into the httpx ones the flow classifies.

What it keeps from the httpx path:

* TLS: the SSL context is httpx's (``httpx.create_ssl_context()``, certifi or
  ``SSL_CERT_FILE``), so both paths trust the same roots.
* Proxies: ``HTTP(S)_PROXY`` and ``NO_PROXY`` are read (once per host, not
  per request as aiohttp's ``trust_env`` does, with two thread hops each);
  aiohttp speaks to http:// proxies only, and ``ALL_PROXY``/SOCKS is not read.
  ``~/.netrc`` is not read: the request carries the provider's key.
* The key: the ``Authorization`` header is built at send time and taken off
  the request once its head has been written (:class:`_KeylessRequest`), so the
  response's ``request_info`` (and any repr of it) no longer holds the key.
* Failure mapping: a connect failure or connect timeout may be sent again; a
  connection lost after the request went out (reset, disconnect, a malformed
  answer) is ``ConnectionLost`` and never is (it may have been billed).
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import httpx

from deepseek_magic.client.flow import (
    ChunkStep,
    CloseStep,
    EventCallback,
    Flow,
    HttpAnswer,
    ReadStep,
    RetryNotice,
    SendStep,
    SleepStep,
    Step,
    StreamState,
    encode_body,
    reply_flow,
    resume,
)
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.events import Accumulator, Reply
from deepseek_magic.providers import ChatRequest, get_provider

#: Seconds an idle connection is kept. Below the usual server keep-alive (uvicorn 5 s, nginx 75 s), so a
#: connection is dropped here before the server drops it under a request that would then be lost.
KEEPALIVE = 4.0

#: Header names to take off the request once sent (set per send; the request is built in the same task).
_SIGNED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("deepseek_magic_signed", default=())


class _KeylessRequest(aiohttp.ClientRequest):
    """An aiohttp request that forgets its credentials once its head is on the wire.

    ``ClientRequest.send`` serialises the head before it returns, so the
    headers can be dropped then; the response's ``request_info`` is a live view
    of them, and nothing the batch keeps afterwards holds the key.
    """

    async def send(self, conn: Any) -> aiohttp.ClientResponse:
        try:
            return await super().send(conn)
        finally:
            for name in _SIGNED.get():
                self.headers.popall(name, None)


class _Answer:
    """An aiohttp response seen through :class:`~deepseek_magic.client.flow.HttpAnswer` (its head only)."""

    __slots__ = ("raw",)

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self.raw = raw

    @property
    def status_code(self) -> int:
        return self.raw.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.raw.headers

    @property
    def reason_phrase(self) -> str:
        return self.raw.reason or ""

    def __repr__(self) -> str:
        return f"<answer {self.raw.status}>"

    def close(self) -> None:
        """Give the connection back when the body was read to its end, else close it."""
        if self.raw.content.at_eof():
            self.raw.release()
        else:
            self.raw.close()


def _send_failure(exc: BaseException) -> httpx.TransportError:
    """The httpx error the flow would have seen for this failure while sending (see the module docstring)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS, proxy: nothing was sent
        return httpx.ConnectError(text)
    if isinstance(exc, asyncio.TimeoutError):  # connected and sent, then no answer within read_timeout
        return httpx.ReadTimeout(text)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text)
    # Disconnected, reset, or an answer that is not HTTP: the request may have gone out.
    return httpx.RemoteProtocolError(text)


def _read_failure(exc: BaseException) -> httpx.TransportError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.ReadTimeout(text)
    return httpx.ReadError(text)


async def _read_up_to(answer: _Answer, cap: int) -> bytes:
    """The body, read until it ends or passes ``cap`` bytes (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    content = answer.raw.content
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(parts)


class PooledChatClient:
    """:class:`~deepseek_magic.client.AsyncChatClient`'s ``chat`` over one aiohttp connection pool.

    ``connections`` bounds the pool (the batch's concurrency); connections
    are reused while busy and dropped after :data:`KEEPALIVE` idle seconds.
    Open it on the loop that will use it (``async with``).
    """

    def __init__(self, *, connections: int = 100, verify: ssl.SSLContext | bool = True) -> None:
        self._connections = connections
        self._verify: ssl.SSLContext | bool = verify
        self._http: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}
        self._proxies: dict[str, str | None] = {}

    async def __aenter__(self) -> PooledChatClient:
        connector = aiohttp.TCPConnector(
            limit=self._connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE,
            ssl=self._verify if isinstance(self._verify, ssl.SSLContext) else self._verify is not False,
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # proxies are looked up once per host in _proxy_for; netrc is not wanted
            request_class=_KeylessRequest,
            auto_decompress=True,
            raise_for_status=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def chat(
        self,
        request: ChatRequest,
        *,
        on_event: EventCallback | None = None,
        accumulator: Accumulator | None = None,
        on_retry: RetryNotice | None = None,
    ) -> Reply:
        """Send ``request`` and return the whole reply; raises exactly like ``AsyncChatClient.chat``."""
        acc = accumulator if accumulator is not None else Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        state.on_retry = on_retry
        async with aclosing(self._drive(reply_flow(request, state, acc), acc)) as events:
            async for event in events:
                if on_event is not None:
                    on_event(event)
        return state.finish(acc)

    async def _drive(self, flow: Flow, acc: Accumulator) -> AsyncGenerator[Any, None]:
        """Perform ``flow``'s steps (the twin of ``AsyncChatClient._drive``)."""
        opened: list[_Answer] = []
        add = acc.add
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                done, step = resume(flow, value, error)
                if done:
                    return
                value = error = None
                if type(step) is list:
                    for event in step:
                        add(event)
                        yield event
                    continue
                try:
                    value = await self._perform(step, opened)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            flow.close()
            for answer in opened:
                answer.close()

    async def _perform(self, step: Step, opened: list[_Answer]) -> Any:
        if type(step) is SendStep:
            return await self._open(step, opened)
        if type(step) is ReadStep:
            answer = _answer(step.response)
            try:
                return await _read_up_to(answer, step.cap)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = _read_failure(exc)
            raise failure
        if type(step) is ChunkStep:
            answer = _answer(step.response)
            try:
                chunk = await answer.raw.content.readany()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = _read_failure(exc)
            else:
                return chunk or None
            raise failure
        if type(step) is CloseStep:
            _answer(step.response).close()
        elif type(step) is SleepStep:
            await asyncio.sleep(step.seconds)
        return None

    async def _open(self, step: SendStep, opened: list[_Answer]) -> _Answer:
        http = self._http
        if http is None:
            raise RuntimeError("open the client with 'async with' first")
        prepared = step.prepared
        settings = prepared.settings
        body = encode_body(prepared)  # a lone surrogate is a ConfigError here, before anything is sent
        headers = dict(prepared.call.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        signed = _sign(prepared.provider, settings, headers)
        token = _SIGNED.set(signed)
        try:
            raw = await http.request(
                prepared.call.method,
                step.url,
                data=body,
                headers=headers,
                timeout=self._timeout(settings),
                allow_redirects=False,
                proxy=self._proxy_for(step.url),
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failure = _send_failure(exc)
        else:
            answer = _Answer(raw)
            opened.append(answer)
            return answer
        finally:
            _SIGNED.reset(token)
            headers.clear()  # the key leaves this frame with the request
        raise failure

    def _proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for ``url``'s scheme and host (``NO_PROXY`` honoured), remembered."""
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            bypass = bool(urllib.request.proxy_bypass(parts.hostname or ""))
            self._proxies[origin] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[origin]

    def _timeout(self, settings: Settings) -> aiohttp.ClientTimeout:
        key = (settings.connect_timeout, settings.read_timeout)
        timeout = self._timeouts.get(key)
        if timeout is None:
            # No overall limit (a long answer is not a failure); connect and silence are bounded as with httpx.
            timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=key[0], sock_read=key[1])
            self._timeouts[key] = timeout
        return timeout


def _sign(provider: Any, settings: Settings, headers: dict[str, str]) -> tuple[str, ...]:
    """Add the provider's auth headers to ``headers``; the names to drop once sent."""
    auth = provider.auth_headers(settings.resolved_api_key() or "")
    headers.update(auth)
    return tuple(auth)


def _answer(response: HttpAnswer) -> _Answer:
    """The steps carry the answers this loop opened."""
    assert isinstance(response, _Answer)
    return response


__all__ = ["KEEPALIVE", "PooledChatClient"]
