"""The flow's steps performed over :mod:`.h1`'s lean pool: the batch's loop, for thousands of requests in flight.

Why not httpx here: with 2,500 requests in flight (DeepSeek's per-account
limit on Flash) httpcore's pool does work proportional to connections ×
waiting requests on every event (encode/httpcore#1035), and httpx's and
aiohttp's client layers spend hundreds of µs of CPU per request, which at that
scale is what makes a batch fall behind the server (:mod:`.h1` has the
figures). Every decision is still the flow's (:mod:`.flow`): what to retry,
what a status means, how much of a body to read; this module only moves bytes.
:mod:`.h1` raises the httpx failures the flow classifies, with the same
meaning as on the httpx path.

What it keeps from the httpx path:

* TLS: the SSL context is httpx's (``httpx.create_ssl_context()``, certifi or
  ``SSL_CERT_FILE``), so both paths trust the same roots.
* Proxies: ``HTTP(S)_PROXY`` and ``NO_PROXY`` are read once per host (an
  ``http://`` proxy; ``ALL_PROXY``/SOCKS is not read). ``~/.netrc`` is not
  read: the request carries the provider's key.
* The key: the auth header is built at send time into the request head and
  the header dict is cleared once the head is written; the answer the flow
  keeps holds nothing of the request.
* Failure mapping: a connect failure or connect timeout may be sent again; a
  connection lost after the request went out (reset, disconnect, a malformed
  answer) is ``ConnectionLost`` and never is (it may have been billed).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import httpx

from deepseek_magic.client.flow import (
    ChunkStep,
    CloseStep,
    EventCallback,
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
from deepseek_magic.client.h1 import H1Pool, Response
from deepseek_magic.core.events import Accumulator, Reply
from deepseek_magic.providers import ChatRequest, get_provider


class _Answer:
    """A pooled response seen through :class:`~deepseek_magic.client.flow.HttpAnswer` (its head only)."""

    __slots__ = ("raw",)

    def __init__(self, raw: Response) -> None:
        self.raw = raw

    @property
    def status_code(self) -> int:
        return self.raw.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.raw.headers

    @property
    def reason_phrase(self) -> str:
        return self.raw.reason_phrase

    def __repr__(self) -> str:
        return f"<answer {self.raw.status_code}>"

    def close(self) -> None:
        """Give the connection back when the body was read to its end, else close it."""
        self.raw.close()


async def _read_up_to(answer: _Answer, cap: int) -> bytes:
    """The body, read until it ends or passes ``cap`` bytes (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await answer.raw.read_some()
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


class PooledChatClient:
    """:class:`~deepseek_magic.client.AsyncChatClient`'s ``chat`` over one :class:`~.h1.H1Pool`.

    ``connections`` bounds the idle connections kept (the batch's
    concurrency); connections are reused while busy and dropped after
    :data:`~.h1.KEEPALIVE` idle seconds. Open it on the loop that will use it
    (``async with``).
    """

    def __init__(self, *, connections: int = 100, verify: ssl.SSLContext | None = None) -> None:
        self._connections = connections
        self._verify = verify
        self._http: H1Pool | None = None
        self._proxies: dict[str, str | None] = {}

    async def __aenter__(self) -> PooledChatClient:
        context = self._verify if self._verify is not None else httpx.create_ssl_context()
        self._http = H1Pool(limit=self._connections, ssl_context=context)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def requests_sent(self) -> int:
        """Requests written to a connection so far (none before the client is opened)."""
        return self._http.sent if self._http is not None else 0

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def chat(
        self,
        request: ChatRequest,
        *,
        on_event: EventCallback | None = None,
        accumulator: Accumulator | None = None,
        on_retry: RetryNotice | None = None,
    ) -> Reply:
        """Send ``request`` and return the whole reply; raises exactly like ``AsyncChatClient.chat``.

        The flow's steps are performed right here (the twin of ``AsyncChatClient._drive``, without its async
        generator): a batch row then costs one coroutine, not a generator layer on every event and step.
        """
        acc = accumulator if accumulator is not None else Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        state.on_retry = on_retry
        flow = reply_flow(request, state, acc)
        opened: list[_Answer] = []
        add = acc.add
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                done, step = resume(flow, value, error)
                if done:
                    break
                value = error = None
                if type(step) is list:
                    for event in step:
                        add(event)
                        if on_event is not None:
                            on_event(event)
                    continue
                try:
                    value = await self._perform(step, opened)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            flow.close()
            for answer in opened:
                answer.close()
        return state.finish(acc)

    async def _perform(self, step: Step, opened: list[_Answer]) -> Any:
        if type(step) is SendStep:
            return await self._open(step, opened)
        if type(step) is ReadStep:
            return await _read_up_to(_answer(step.response), step.cap)
        if type(step) is ChunkStep:
            return await _answer(step.response).raw.read_some() or None
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
        headers.update(prepared.provider.auth_headers(settings.resolved_api_key() or ""))
        try:
            raw = await http.request(
                prepared.call.method,
                step.url,
                headers,
                body,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
                proxy=self._proxy_for(step.url),
            )
        finally:
            headers.clear()  # the key leaves this frame with the request head
        answer = _Answer(raw)
        opened.append(answer)
        return answer

    def _proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for ``url``'s scheme and host (``NO_PROXY`` honoured), remembered."""
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            bypass = bool(urllib.request.proxy_bypass(parts.hostname or ""))
            self._proxies[origin] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[origin]


def _answer(response: HttpAnswer) -> _Answer:
    """The steps carry the answers this loop opened."""
    assert isinstance(response, _Answer)
    return response


__all__ = ["PooledChatClient"]
