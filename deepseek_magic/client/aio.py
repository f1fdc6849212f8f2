"""The asynchronous client: the same flow's steps performed with ``httpx.AsyncClient``.

Used for batch work on one event loop and by ``Session.aask``; every decision
is the flow's, so it behaves exactly like :mod:`.sync` (tests/test_ask_parity.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from deepseek_magic.client.flow import (
    ChunkStep,
    CloseStep,
    EventCallback,
    Flow,
    ReadStep,
    RetryNotice,
    SendStep,
    SleepStep,
    Step,
    StreamState,
    build_request,
    json_flow,
    prepare_call,
    reply_flow,
    resume,
)
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.events import Accumulator, Event, Reply
from deepseek_magic.providers import ChatRequest, HttpCall, get_provider


async def _aread_up_to(chunks: AsyncIterator[bytes], cap: int) -> bytes:
    """Async twin of :func:`_read_up_to`."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(parts)


class AsyncChatClient:
    """The same client over ``httpx.AsyncClient``, for batch work on one event loop."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``verify`` takes a shared SSL context (building one costs ~30 ms).

        Without an explicit ``transport`` httpx builds its own, mounting
        ``HTTP(S)_PROXY``/``ALL_PROXY`` and honouring ``NO_PROXY`` exactly as
        the sync client does; a transport passed in bypasses the environment.
        """
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(
            transport=transport, limits=limits, verify=verify, follow_redirects=False, trust_env=True
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def chat(
        self,
        request: ChatRequest,
        *,
        on_event: EventCallback | None = None,
        accumulator: Accumulator | None = None,
        on_retry: RetryNotice | None = None,
    ) -> Reply:
        """Async twin of :meth:`ChatClient.chat`."""
        acc = accumulator if accumulator is not None else Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        state.on_retry = on_retry
        async with aclosing(self._drive(reply_flow(request, state, acc), acc)) as events:
            async for event in events:
                if on_event is not None:
                    on_event(event)
        return state.finish(acc)

    async def events(self, request: ChatRequest) -> AsyncIterator[Event]:
        """Events of one reply as they arrive; raises like :meth:`chat`."""
        acc = Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        async with aclosing(self._drive(reply_flow(request, state, acc), acc)) as events:
            async for event in events:
                yield event
        state.finish(acc)

    async def get_json(self, call: HttpCall, settings: Settings) -> Any:
        result: list[Any] = []
        prepared = prepare_call(get_provider(settings.provider), call, settings)
        async with aclosing(self._drive(json_flow(prepared), Accumulator(), result)) as events:
            async for _ in events:
                pass
        return result[0]

    async def _drive(
        self, flow: Flow, acc: Accumulator, result: list[Any] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Async twin of :meth:`ChatClient._drive` (an async generator cannot return: ``result`` gets the value)."""
        opened: list[httpx.Response] = []
        add = acc.add
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                done, step = resume(flow, value, error)
                if done:
                    if result is not None:
                        result.append(step)
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
            for response in opened:
                await response.aclose()

    async def _perform(self, step: Step, opened: list[httpx.Response]) -> Any:
        if type(step) is ChunkStep:
            if step.chunks is None:
                step.chunks = step.response.aiter_bytes()
            return await anext(step.chunks, None)
        if type(step) is SendStep:
            return await self._open(step, opened)
        if type(step) is ReadStep:
            return await _aread_up_to(step.response.aiter_bytes(), step.cap)
        if type(step) is CloseStep:
            await step.response.aclose()
        elif type(step) is SleepStep:
            await asyncio.sleep(step.seconds)
        return None

    async def _open(self, step: SendStep, opened: list[httpx.Response]) -> httpx.Response:
        prepared = step.prepared
        response = await self._http.send(build_request(self._http, prepared, step.url), stream=True, auth=prepared.auth)
        opened.append(response)
        return response
