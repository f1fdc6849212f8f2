"""The request flow, without I/O: every decision the sync and async clients share.

A flow is a generator that yields *steps* (send this request, read this
body, give me the next chunk, close, sleep) and receives their results; the
thin loops in :mod:`.sync` and :mod:`.aio` perform them with httpx (and
:mod:`.pooled` over :mod:`.h1`, for batches at account scale). What to
retry, how long to wait, how to read an error and how to decode a stream are
therefore written once, and a test can drive a flow without a network.

Retry rule: a request is sent again only when no answer body was consumed:
connection failures, and HTTP 429/500/502/503/504 answers (whose body is an
error, not output). Once a 200 response has started, the request is never
sent again: a lost connection mid-stream raises :class:`StreamInterrupted`
carrying the partial reply, so nothing is billed twice and nothing is lost.

Async delivery (Runware's ``deliveryMethod: "async"``) is an optional provider
seam, :class:`Polling`: when the first answer only acknowledges the task, the
client polls with growing pauses until the provider says the result is in,
for at most ``read_timeout`` seconds in all. A ``KeyboardInterrupt`` during a
pause simply propagates; no event has been added by then, so the accumulator
stays consistent.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import httpx

from deepseek_magic.client.retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after
from deepseek_magic.client.sse import SSEDecoder, SSEOverflow
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BlankReply,
    ConfigError,
    ConnectionLost,
    DeepSeekError,
    StreamInterrupted,
    UnexpectedResponse,
    redact,
    status_error,
)
from deepseek_magic.core.events import Accumulator, Event, Reply
from deepseek_magic.core.limits import MAX_REQUEST_BYTES
from deepseek_magic.core.textcheck import bad_text_problem
from deepseek_magic.providers import ChatRequest, HttpCall, Provider, StreamParser

EventCallback = Callable[[Event], None]
#: Told (one line) before the client waits to send a request again: "rate limited, retrying in 4 s".
RetryNotice = Callable[[str], None]

#: Bytes of an error answer that are read; the rest is left unread (a 200 MB error page is not an error message).
MAX_ERROR_BODY = 64 * 1024
#: Bytes of a whole (non-stream) JSON answer; a real reply of 384k tokens is a few megabytes.
MAX_JSON_BODY = 64 * 1024 * 1024
#: Bytes of one streamed answer; far above any real reply, it only stops an endless stream.
MAX_STREAM_BYTES = 1024 * 1024 * 1024
#: Content types a reply may come with ("" too: some servers send none); anything else is not a reply.
REPLY_TYPES = ("text/event-stream", "application/json", "application/x-ndjson", "")

#: Pauses between polls of an async task: the first, the growth factor, the longest (seconds).
POLL_FIRST = 0.25
POLL_FACTOR = 1.5
POLL_MAX = 4.0


class HttpAnswer(Protocol):
    """What the flow reads of a response's head: ``httpx.Response`` has it, and so has :mod:`.pooled`'s adapter.

    The body is only ever read by the loop that performs the steps, so a flow
    does not care which HTTP library answered.
    """

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def reason_phrase(self) -> str: ...


@runtime_checkable
class Polling(Protocol):
    """Optional provider methods for async delivery (submit, then poll for the result).

    ``poll_call`` gets the call that was sent and its JSON answer and returns
    the call that asks for the result, or ``None`` when the answer is already
    the result. ``poll_result`` turns one poll answer into the reply's events,
    or ``None`` while the task is still running.
    """

    def poll_call(self, call: HttpCall, body: Any) -> HttpCall | None: ...

    def poll_result(self, call: HttpCall, body: Any) -> list[Event] | None: ...


# --------------------------------------------------------------------- shared logic


class ProviderAuth(httpx.Auth):
    """Adds the provider's ``Authorization`` header as each request is sent, and holds no key.

    Why: IPython's ``%xmode Verbose`` (stack_data) prints the variables of
    every frame *and evaluates the attributes* the executing lines mention,
    so ``repr=False`` hides nothing. Here no object a frame can reach holds
    the plain key: the header is built from the Settings (a ``SecretStr``)
    inside httpx's auth step, after the request (URL, JSON body) has been
    built, so a failure while building it finds no key anywhere; and the header
    is taken off the request again once httpx is done with it (response in, or
    the send failed), so the request objects left in an exception's frames hold
    no key either. httpx's own ``Headers`` repr masks ``authorization``.
    """

    def __init__(self, provider: Provider, settings: Settings) -> None:
        self._provider = provider
        self._settings = settings

    def __repr__(self) -> str:
        return f"ProviderAuth({self._provider.name!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        names = self._sign(request)
        try:
            yield request
        finally:  # httpx closes the flow when the response is in or the send failed: the header goes
            self._unsign(request, names)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        names = self._sign(request)
        try:
            yield request
        finally:
            self._unsign(request, names)

    def _sign(self, request: httpx.Request) -> list[str]:
        headers = self._provider.auth_headers(_secret(self._settings) or "")
        request.headers.update(headers)
        return list(headers)

    @staticmethod
    def _unsign(request: httpx.Request, names: list[str]) -> None:
        """The bytes are on the wire by now; the request left in an exception's frames no longer holds the key."""
        for name in names:
            request.headers.pop(name, None)


def _secret(settings: Settings) -> str | None:
    """The key for the header: only ever a call's value, never stored."""
    return settings.resolved_api_key()


@dataclass
class _Prepared:
    """Everything needed to send one call, computed once before any I/O (no key among it)."""

    provider: Provider
    call: HttpCall
    timeout: httpx.Timeout
    settings: Settings
    auth: ProviderAuth = field(repr=False)
    #: The body as JSON bytes, encoded once for the size check and reused by loops that send bytes themselves.
    encoded: bytes | None = field(default=None, repr=False)


def body_size(body: Any) -> int:
    """Bytes of ``body`` as JSON on the wire (compact, UTF-8), the figure the server's limit applies to."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def _strict_json(body: Any) -> bytes | None:
    """``body`` encoded exactly as httpx encodes ``json=``; ``None`` when it cannot be (said later, in one line)."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return None


def check_body_size(body: Any, encoded: bytes | None = None) -> None:
    """Refuse, in one line and before sending, a body above :data:`~deepseek_magic.core.limits.MAX_REQUEST_BYTES`.

    Images travel inside the body as base64, so a few large figures are what
    reach DeepSeek's 48 MiB; the check runs on every request (history included).
    """
    if body is None:
        return
    size = len(encoded) if encoded is not None else body_size(body)
    if size <= MAX_REQUEST_BYTES:
        return
    images = _image_count(body)
    what = f" ({images} image{'s' if images != 1 else ''} in it)" if images else ""
    raise ConfigError(
        f"the request body is {size / 2**20:.1f} MiB{what}, above the {MAX_REQUEST_BYTES // 2**20} MiB a request "
        "may be; send fewer or smaller images, or start afresh with --new; nothing was sent"
    )


def _image_count(body: Any) -> int:
    messages = body.get("messages") if isinstance(body, dict) else None
    count = 0
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image_url")
    return count


def prepare_call(provider: Provider, call: HttpCall, settings: Settings) -> _Prepared:
    encoded = _strict_json(call.body) if call.body is not None else None
    check_body_size(call.body, encoded)
    if not settings.resolved_api_key():  # also refuses a key with a CR, naming its variable
        raise ConfigError(
            f"no API key for {provider.display_name}: set {settings.key_variable} or enter it in %deepseek settings"
        )
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
    return _Prepared(provider, call, timeout, settings, ProviderAuth(provider, settings), encoded)


def build_request(client: httpx.Client | httpx.AsyncClient, prepared: _Prepared, url: str) -> httpx.Request:
    call = prepared.call
    try:
        return client.build_request(
            call.method,
            url,
            json=call.body if call.body is not None else None,
            headers=call.headers,
            timeout=prepared.timeout,
        )
    except UnicodeEncodeError:
        # Text that cannot be UTF-8 (a lone surrogate): say what and where, in one line; nothing was sent.
        problem = bad_text_problem(call.body) or "the request holds text that cannot be encoded as UTF-8"
        raise ConfigError(f"{problem}; nothing was sent") from None


def encode_body(prepared: _Prepared) -> bytes | None:
    """The call's JSON body as bytes, encoded exactly as httpx encodes ``json=`` (for loops that are not httpx)."""
    body = prepared.call.body
    if body is None:
        return None
    if prepared.encoded is not None:
        return prepared.encoded
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        problem = bad_text_problem(body) or "the request holds text that cannot be encoded as UTF-8"
        raise ConfigError(f"{problem}; nothing was sent") from None


def _connection_failure(prepared: _Prepared, url: str, exc: Exception) -> DeepSeekError:
    host = httpx.URL(url).host
    name = prepared.provider.display_name
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return ConnectionLost(
            f"{name} at {host} closed the connection after the request was sent, before answering; "
            "not sent again, since it may have been billed"
        )
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return APITimeoutError(
            f"{name} did not answer within {prepared.settings.read_timeout:g} s "
            f"(read timeout; raise it with read_timeout)"
        )
    reason = redact(str(exc) or type(exc).__name__, *prepared.settings.secrets_to_redact())
    return APIConnectionError(f"could not reach {name} at {host}: {reason}")


def _status_failure(prepared: _Prepared, response: HttpAnswer, content: bytes) -> APIStatusError:
    text = content.decode("utf-8", "replace")
    body: Any
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, cut at MAX_ERROR_BODY, or nested too deeply to parse
        body = text
    return status_error(
        response.status_code,
        body,
        provider=prepared.provider.display_name,
        secrets=prepared.settings.secrets_to_redact(),
        trace_id=response.headers.get("x-ds-trace-id"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


class _PollClock:
    """When to poll next, and when to give up: all polls share one ``read_timeout`` budget."""

    __slots__ = ("deadline", "delay", "name", "timeout")

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.timeout = settings.read_timeout
        self.deadline = time.monotonic() + settings.read_timeout
        self.delay = POLL_FIRST

    def next_wait(self) -> float:
        """Seconds to pause before the next poll; :class:`APITimeoutError` once the budget is spent."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise APITimeoutError(
                f"{self.name} had not finished the task after {self.timeout:g} s of polling "
                f"(raise read_timeout to wait longer)"
            )
        wait = min(self.delay, remaining)
        self.delay = min(self.delay * POLL_FACTOR, POLL_MAX)
        return wait


_POLLING: dict[type[Any], bool] = {}


def _polls(provider: Provider) -> bool:
    """``isinstance(provider, Polling)``, remembered per class: a runtime protocol check costs ~50 µs a call,
    which a batch at account scale pays once per row."""
    kind = type(provider)
    known = _POLLING.get(kind)
    if known is None:
        known = _POLLING[kind] = isinstance(provider, Polling)
    return known


def _poll_plan(provider: Provider, call: HttpCall, body: Any) -> tuple[Polling, HttpCall] | None:
    """The provider and the poll call when ``body`` only acknowledges an async task."""
    if not _polls(provider) or not isinstance(provider, Polling):
        return None
    poll = provider.poll_call(call, body)
    return None if poll is None else (provider, poll)


def _is_connect_failure(exc: Exception) -> bool:
    """Failures before the request was wholly sent: the server cannot have started on it, so it may go again.

    A connection closed *after* the request went out (``RemoteProtocolError``,
    ``ReadError``) is not one of them: the server may be generating, and billing.
    """
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.WriteTimeout))


def _json_body(prepared: _Prepared, content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply to read" if isinstance(exc, RecursionError) else "not valid JSON"
        raise StreamInterrupted(
            f"{prepared.provider.display_name} sent a reply that is {why} "
            f"({len(content)} bytes); nothing was lost on our side, try again"
        ) from None


def _too_large(prepared: _Prepared, what: str, cap: int, acc: Accumulator) -> StreamInterrupted:
    got = "the partial reply is kept" if acc.events_seen else "nothing usable had arrived"
    return StreamInterrupted(
        f"{prepared.provider.display_name} sent {what} over {cap // (1024 * 1024)} MiB; stopped reading ({got})",
        acc.reply(partial=True),
    )


def _check_answer(prepared: _Prepared, response: HttpAnswer) -> None:
    """Refuse an answer that is not a reply: a redirect, or a page from a proxy in between.

    Raised before anything is read or kept, in one line naming the status,
    the content type and (for a redirect) where it points.
    """
    kind = str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()
    if response.status_code == 200 and kind in REPLY_TYPES:
        return
    name = prepared.provider.display_name
    shown = kind or "no content type"
    location = response.headers.get("location")
    where = f", Location: {location}" if location else ""
    reason = response.reason_phrase or ""
    if 300 <= response.status_code < 400:
        why = "redirects are not followed (check the base URL)"
    else:
        why = "not a reply (a proxy or captive portal in between? check the base URL)"
    raise UnexpectedResponse(f"{name} answered {response.status_code} {reason} ({shown}{where}): {why}")


def _retry_notice(failure: DeepSeekError, delay: float) -> str:
    """The line shown while waiting to send again."""
    seconds = f"{delay:.0f} s" if delay >= 1 else f"{delay:.1f} s"
    if isinstance(failure, APIStatusError) and failure.status_code == 429:
        return f"rate limited, retrying in {seconds}"
    if isinstance(failure, APIStatusError):
        return f"server error {failure.status_code}, retrying in {seconds}"
    return f"could not connect, retrying in {seconds}"


class StreamDecoder:
    """Bytes of one streamed response in, normalized events out.

    The SSE framing and the provider's chunk format are decoded here, for the
    sync and async clients alike (and for tests that replay recordings).
    """

    __slots__ = ("parser", "sse")

    def __init__(self, provider: Provider) -> None:
        self.sse = SSEDecoder()
        self.parser: StreamParser = provider.stream_parser()

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        parser = self.parser
        for sse in self.sse.feed(chunk):
            events += parser.feed(sse.data)
        return events

    def flush(self) -> list[Event]:
        events: list[Event] = []
        for sse in self.sse.flush():
            events += self.parser.feed(sse.data)
        return events

    @property
    def done(self) -> bool:
        return self.parser.done


def _is_json_response(response: HttpAnswer) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")


class StreamState:
    """What one reply's reading left behind: enough to judge whether it finished."""

    __slots__ = ("decoder", "on_retry", "provider", "settings")

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.decoder: StreamDecoder | None = None
        self.on_retry: RetryNotice | None = None
        #: The request's settings: an error the server reports inside a 200 answer is redacted with its key.
        self.settings: Settings | None = None

    def finish(self, acc: Accumulator) -> Reply:
        """The final reply, or :class:`StreamInterrupted` when the server did not finish.

        A reply without a word (no text, no tool calls: a stream of only
        ``[DONE]``, or usage alone) is :class:`BlankReply`, so it is never shown
        as a success, cached, or sent back as context.
        """
        name = self.provider.display_name
        if acc.error is not None:
            secrets = self.settings.secrets_to_redact() if self.settings is not None else ()
            acc.error = replace(acc.error, message=redact(acc.error.message, *secrets))
            raise StreamInterrupted(f"{name} reported an error mid-reply: {acc.error.message}", acc.reply(partial=True))
        decoder = self.decoder
        if not acc.finished and decoder is not None and not decoder.done:
            raise StreamInterrupted(f"{name} closed the stream before the reply was complete", acc.reply(partial=True))
        # A whole body (decoder None) was read to its end: without choices it is blank, not cut short.
        reply = acc.reply()
        if decoder is not None and decoder.parser.malformed:
            reply.warnings.append(f"{decoder.parser.malformed} malformed stream chunk(s) were skipped")
        if is_blank(reply):
            reply.partial = True
            reason = reply.finish_reason or "none given"
            raise BlankReply(
                f"{name} sent a blank reply (no text, no tool calls; finish_reason: {reason}); "
                "it is kept as partial, not cached, not sent as context",
                reply,
            )
        return reply


def is_blank(reply: Reply) -> bool:
    """No choice has text or tool calls (running out of tokens while reasoning is its own case)."""
    if reply.reasoning_exhausted:
        return False
    return not any(choice.content or choice.tool_calls for choice in (reply.choices or [reply]))


def _interrupted(prepared: _Prepared, exc: Exception, accumulator: Accumulator) -> DeepSeekError:
    """The error for a stream that broke after the response had started.

    A timeout before anything arrived is a plain :class:`APITimeoutError`;
    anything else carries the partial reply so the caller can keep it.
    """
    name = prepared.provider.display_name
    if isinstance(exc, httpx.TimeoutException):
        if accumulator.events_seen == 0:
            return _connection_failure(prepared, prepared.call.url, exc)
        why = f"went quiet for more than {prepared.settings.read_timeout:g} s"
    else:
        why = "dropped the connection"
    got = "nothing had arrived yet" if accumulator.events_seen == 0 else "the partial reply is kept"
    return StreamInterrupted(f"{name} {why} mid-reply; {got}", accumulator.reply(partial=True))


# ------------------------------------------------------------------ sans-IO request flow
#
# Every decision about one call lives in the generators below: which URL to
# try, whether a failure may be sent again and after what pause, how much of a
# body to read, when a stream is finished, what error to raise. They do no I/O:
# they yield a step (send this, read that, sleep so long, here are events) and
# are sent its outcome back; a transport failure is thrown into them at the
# step that failed. ChatClient and AsyncChatClient only perform the steps, so
# the sync and async paths cannot drift apart.


@dataclass(slots=True)
class SendStep:
    """Send the prepared call to ``url``; the outcome is the (streaming) response."""

    prepared: _Prepared
    url: str


@dataclass(slots=True)
class ReadStep:
    """Read ``response`` until it ends or passes ``cap`` bytes; the outcome is the bytes read."""

    response: HttpAnswer
    cap: int


@dataclass(slots=True)
class ChunkStep:
    """The next chunk of ``response``'s body, ``None`` at its end (the same step is yielded again per chunk)."""

    response: HttpAnswer
    chunks: Any = None  # the driver's iterator over the body, kept between chunks


@dataclass(slots=True)
class CloseStep:
    """Release ``response`` early (nothing more is read from it)."""

    response: HttpAnswer


@dataclass(slots=True)
class SleepStep:
    seconds: float


#: A step, or a list of events to hand to the caller.
Step = SendStep | ReadStep | ChunkStep | CloseStep | SleepStep | list[Event]
Flow = Generator[Step, Any, Any]


def _open_flow(prepared: _Prepared, on_retry: RetryNotice | None) -> Generator[Step, Any, HttpAnswer]:
    """Send until an answer below 400 comes, retrying only what cannot have been billed (module docstring)."""
    policy = RetryPolicy.of(prepared.settings)
    urls = prepared.call.urls
    url_index = 0
    attempt = 0
    while True:
        url = urls[url_index]
        failure: DeepSeekError
        try:
            response: HttpAnswer = yield SendStep(prepared, url)
        except httpx.TransportError as exc:
            if not _is_connect_failure(exc):
                raise _connection_failure(prepared, url, exc) from None
            if url_index + 1 < len(urls):
                url_index += 1  # a fallback base: the first could not be reached
                continue
            failure = _connection_failure(prepared, url, exc)
            retry_after = None
        else:
            if response.status_code < 400:
                return response
            try:
                content: bytes = yield ReadStep(response, MAX_ERROR_BODY)
            except httpx.TransportError:
                content = b""
            yield CloseStep(response)
            failure = _status_failure(prepared, response, content[:MAX_ERROR_BODY])
            if response.status_code not in RETRYABLE_STATUS:
                raise failure
            retry_after = failure.retry_after if isinstance(failure, APIStatusError) else None
        delay = policy.delay(attempt, retry_after)
        if delay is None:
            raise failure
        if on_retry is not None:
            on_retry(_retry_notice(failure, delay))
        yield SleepStep(delay)
        attempt += 1


def _capped(prepared: _Prepared, content: bytes, cap: int, acc: Accumulator) -> bytes:
    if len(content) > cap:
        raise _too_large(prepared, "a reply", cap, acc)
    return content


def json_flow(prepared: _Prepared, acc: Accumulator | None = None) -> Generator[Step, Any, Any]:
    """Open, read one whole JSON answer (bounded), return it decoded."""
    response = yield from _open_flow(prepared, None)
    content: bytes = yield ReadStep(response, MAX_JSON_BODY)
    yield CloseStep(response)
    return _json_body(prepared, _capped(prepared, content, MAX_JSON_BODY, acc or Accumulator()))


def _poll_flow(submitted: _Prepared, plan: tuple[Polling, HttpCall]) -> Generator[Step, Any, list[Event]]:
    """Poll until the provider has the result of ``submitted``, within ``read_timeout``."""
    poller, call = plan
    prepared = prepare_call(submitted.provider, call, submitted.settings)
    clock = _PollClock(submitted.provider.display_name, submitted.settings)
    while True:
        yield SleepStep(clock.next_wait())
        body = yield from json_flow(prepared)
        events = poller.poll_result(submitted.call, body)
        if events is not None:
            return events


def reply_flow(request: ChatRequest, state: StreamState, acc: Accumulator) -> Generator[Step, Any, None]:
    """One reply: open, then a whole JSON body (maybe polled for) or a bounded stream, as event lists."""
    provider = state.provider
    prepared = prepare_call(provider, request.call_for(provider), request.settings)
    state.settings = prepared.settings
    response = yield from _open_flow(prepared, state.on_retry)
    try:
        _check_answer(prepared, response)
        if not prepared.call.stream or _is_json_response(response):
            content: bytes = yield ReadStep(response, MAX_JSON_BODY)
            body = _json_body(prepared, _capped(prepared, content, MAX_JSON_BODY, acc))
            plan = _poll_plan(provider, prepared.call, body)
            if plan is None:
                events = provider.parse_body(body)
            else:
                yield CloseStep(response)  # nothing more comes on this connection
                events = yield from _poll_flow(prepared, plan)
            if events:
                yield events
            return
        decoder = state.decoder = StreamDecoder(provider)
        step = ChunkStep(response)
        received = 0
        while True:
            chunk: bytes | None = yield step
            if chunk is None:
                break
            received += len(chunk)
            if received > MAX_STREAM_BYTES:
                raise _too_large(prepared, "a stream", MAX_STREAM_BYTES, acc)
            events = decoder.feed(chunk)
            if events:
                yield events
            if decoder.done:
                return
        events = decoder.flush()
        if events:
            yield events
    except httpx.TransportError as exc:
        raise _interrupted(prepared, exc, acc) from None
    except SSEOverflow:
        raise _too_large(prepared, "one stream line", SSEDecoder.max_line, acc) from None


def resume(flow: Flow, value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Advance ``flow`` with an outcome (or a failure thrown in): ``(False, step)`` or ``(True, result)``."""
    try:
        return False, (flow.send(value) if error is None else flow.throw(error))
    except StopIteration as stop:
        return True, stop.value


# ----------------------------------------------------------------------- sync client
