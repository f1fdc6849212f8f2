"""The synchronous client: the flow's steps performed with ``httpx.Client``.

What the magics use, so that the kernel's Interrupt (``KeyboardInterrupt``)
lands in the read loop and the partial reply stays in the accumulator.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from contextlib import closing
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
from deepseek_magic.core.errors import (
    ConfigError,
)
from deepseek_magic.core.events import Accumulator, Event, Reply
from deepseek_magic.providers import ChatRequest, HttpCall, get_provider


class ChatClient:
    """Synchronous client: what the magics use, so that the kernel's Interrupt
    (``KeyboardInterrupt``) lands in the read loop and the partial reply stays."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(transport=transport, follow_redirects=False, trust_env=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def prepare(self, request: ChatRequest) -> HttpCall:
        """The exact call that would be sent (for ``--dry-run``); sends nothing."""
        return get_provider(request.settings.provider).prepare(request)

    def chat(
        self,
        request: ChatRequest,
        *,
        on_event: EventCallback | None = None,
        accumulator: Accumulator | None = None,
        on_retry: RetryNotice | None = None,
    ) -> Reply:
        """Send ``request`` and return the whole reply, calling ``on_event`` per event.

        Pass your own ``accumulator`` to still hold the partial reply if a
        ``KeyboardInterrupt`` arrives while streaming; the connection is
        closed either way. ``on_retry`` hears one line before each wait to send again.
        """
        acc = accumulator if accumulator is not None else Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        state.on_retry = on_retry
        with closing(self._drive(reply_flow(request, state, acc), acc)) as events:
            if on_event is None:
                for _ in events:
                    pass
            else:
                for event in events:
                    on_event(event)
        return state.finish(acc)

    def events(self, request: ChatRequest) -> Iterator[Event]:
        """The normalized events of one reply, as they arrive; raises like :meth:`chat`."""
        acc = Accumulator()
        state = StreamState(get_provider(request.settings.provider))
        with closing(self._drive(reply_flow(request, state, acc), acc)) as events:
            yield from events
        state.finish(acc)

    def get_json(self, call: HttpCall, settings: Settings) -> Any:
        """A small GET such as ``/models`` or ``/user/balance``."""
        prepared = prepare_call(get_provider(settings.provider), call, settings)
        events = self._drive(json_flow(prepared), Accumulator())
        while True:
            try:
                next(events)
            except StopIteration as stop:
                return stop.value

    def models(self, settings: Settings) -> list[str]:
        """Model ids the provider offers to this key."""
        provider = get_provider(settings.provider)
        call = provider.models_call(settings)
        if call is None:
            raise ConfigError(f"{provider.display_name} has no model list endpoint")
        return provider.parse_models(self.get_json(call, settings))

    def balance(self, settings: Settings) -> Any:
        """The account balance, where the provider has an endpoint for it."""
        provider = get_provider(settings.provider)
        call = provider.balance_call(settings)
        if call is None:
            raise ConfigError(f"{provider.display_name} has no balance endpoint")
        return self.get_json(call, settings)

    def _drive(self, flow: Flow, acc: Accumulator) -> Generator[Event, None, Any]:
        """Perform ``flow``'s steps; events are added to ``acc`` one by one as they are handed on."""
        opened: list[httpx.Response] = []
        add = acc.add
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                done, step = resume(flow, value, error)
                if done:
                    return step
                value = error = None
                if type(step) is list:
                    for event in step:
                        add(event)
                        yield event
                    continue
                try:
                    value = self._perform(step, opened)
                except httpx.TransportError as exc:
                    error = exc
        finally:
            flow.close()
            for response in opened:  # also on KeyboardInterrupt and early close: connections are released
                response.close()

    def _perform(self, step: Step, opened: list[httpx.Response]) -> Any:
        if type(step) is ChunkStep:
            if step.chunks is None:
                step.chunks = step.response.iter_bytes()
            return next(step.chunks, None)
        if type(step) is SendStep:
            return self._open(step, opened)
        if type(step) is ReadStep:
            return _read_up_to(step.response.iter_bytes(), step.cap)
        if type(step) is CloseStep:
            step.response.close()
        elif type(step) is SleepStep:
            time.sleep(step.seconds)
        return None

    def _open(self, step: SendStep, opened: list[httpx.Response]) -> httpx.Response:
        prepared = step.prepared
        response = self._http.send(build_request(self._http, prepared, step.url), stream=True, auth=prepared.auth)
        opened.append(response)
        return response


def _read_up_to(chunks: Iterator[bytes], cap: int) -> bytes:
    """The body, read until it ends or passes ``cap`` bytes (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(parts)
