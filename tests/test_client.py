"""The HTTP client against the emulator, a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from deepseek_magic.client import AsyncChatClient, ChatClient, parse_retry_after, retry_delay
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    InsufficientBalanceError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    StreamInterrupted,
    mask,
    redact,
    status_error,
)
from deepseek_magic.core.events import Accumulator, ContentDelta, Event, ReasoningDelta, ResponseMeta, Usage
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.providers import ChatRequest

KEY = "sk-emulator"
ASK = [{"role": "user", "content": "Name three prime numbers."}]


@pytest.fixture
def client() -> Iterator[ChatClient]:
    with ChatClient() as chat_client:
        yield chat_client


def request(
    emu: Any, messages: list[dict[str, Any]] | None = None, *, fault: str | None = None, **options: Any
) -> ChatRequest:
    headers = {"X-Emulator-Fault": fault} if fault else {}
    options.setdefault("api_key", KEY)
    options.setdefault("backoff_base", 0.01)
    settings = Settings.build(base_url=emu.base_url, extra_headers=headers, **options)
    return ChatRequest(messages or ASK, settings)


def chat_requests(emu: Any, since: int) -> list[Any]:
    return [r for r in emu.requests[since:] if r.path.endswith("/chat/completions")]


def test_streamed_reply_has_reasoning_content_usage_and_events_in_order(emulator: Any, client: ChatClient) -> None:
    seen: list[Event] = []
    reply = client.chat(request(emulator), on_event=seen.append)
    assert reply.reasoning and reply.content and reply.finish_reason == "stop"
    assert isinstance(seen[0], ResponseMeta)
    kinds = [type(e) for e in seen if isinstance(e, (ReasoningDelta, ContentDelta))]
    assert kinds.index(ContentDelta) > 0 and ReasoningDelta not in kinds[kinds.index(ContentDelta) :]
    usages = [i for i, e in enumerate(seen) if isinstance(e, Usage)]
    last_delta = max(i for i, e in enumerate(seen) if isinstance(e, (ReasoningDelta, ContentDelta)))
    assert len(usages) == 1 and usages[0] > last_delta, "one Usage event, after the last delta"
    assert reply.usage == seen[usages[0]], "the reply keeps the usage the stream reported"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.usage.prompt_tokens == reply.usage.cache_hit_tokens + reply.usage.cache_miss_tokens
    assert reply.model == "deepseek-flash" and reply.id  # DeepSeek's default name since V4.1


def test_stream_and_non_stream_give_the_same_reply(emulator: Any, client: ChatClient) -> None:
    streamed = client.chat(request(emulator, seed=3))
    whole = client.chat(request(emulator, seed=3, stream=False))
    assert (whole.content, whole.reasoning, whole.finish_reason) == (
        streamed.content,
        streamed.reasoning,
        streamed.finish_reason,
    )


def test_thinking_off_has_no_reasoning(emulator: Any, client: ChatClient) -> None:
    reply = client.chat(request(emulator, thinking=False))
    assert reply.reasoning == "" and reply.content
    assert chat_requests(emulator, len(emulator.requests) - 1)[0].body["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(
    ("fault", "error_type", "words"),
    [
        ("status=400", InvalidRequestError, "HTTP 400"),
        ("status=402", InsufficientBalanceError, "Insufficient Balance"),
        ("status=429", RateLimitError, "HTTP 429"),
        ("status=500", ServerError, "HTTP 500"),
        ("status=503", ServerError, "HTTP 503"),
    ],
)
def test_each_error_status_becomes_its_typed_error(
    emulator: Any, client: ChatClient, fault: str, error_type: type, words: str
) -> None:
    with pytest.raises(error_type) as info:
        client.chat(request(emulator, fault=fault, max_retries=0))
    assert words in str(info.value) and "DeepSeek" in str(info.value)
    assert info.value._render_traceback_() == [f"{error_type.__name__}: {info.value}"]


def test_wrong_key_is_401_and_the_message_does_not_contain_it(emulator: Any, client: ChatClient) -> None:
    wrong = "sk-wrong-canary-9f8e7d6c5b4a"
    with pytest.raises(AuthenticationError) as info:
        client.chat(request(emulator, api_key=wrong))
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert info.value.status_code == 401


def test_missing_key_sends_nothing(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    settings = Settings.build(base_url=emulator.base_url)
    with pytest.raises(ConfigError, match="no API key for DeepSeek: set DEEPSEEK_API_KEY"):
        client.chat(ChatRequest(ASK, settings))
    assert len(emulator.requests) == before


def test_retries_server_errors_then_succeeds(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    emulator.config.faults.extend(["status=503", "status=500"])
    reply = client.chat(request(emulator, max_retries=2))
    assert reply.content
    assert len(chat_requests(emulator, before)) == 3


def test_gives_up_after_max_retries(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    emulator.config.faults.extend(["status=503"] * 3)
    with pytest.raises(ServerError):
        client.chat(request(emulator, max_retries=1))
    assert len(chat_requests(emulator, before)) == 2
    emulator.config.faults.clear()


def test_client_errors_are_not_retried(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    with pytest.raises(InvalidRequestError):
        client.chat(request(emulator, fault="status=400", max_retries=3))
    assert len(chat_requests(emulator, before)) == 1


def test_retry_after_is_honoured(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    emulator.config.faults.append("status=429,retry_after=1")
    started = time.monotonic()
    reply = client.chat(request(emulator, max_retries=1, backoff_base=0))
    assert time.monotonic() - started >= 0.9
    assert reply.content and len(chat_requests(emulator, before)) == 2


def test_drop_mid_stream_keeps_the_partial_reply_and_is_never_resent(emulator: Any, client: ChatClient) -> None:
    before = len(emulator.requests)
    acc = Accumulator()
    with pytest.raises(StreamInterrupted) as info:
        client.chat(request(emulator, fault="drop_after=6", max_retries=3), accumulator=acc)
    partial = info.value.partial
    assert partial is not None and partial.partial
    assert partial.reasoning + partial.content == acc.reasoning + acc.content != ""
    assert "partial reply is kept" in str(info.value)
    assert len(chat_requests(emulator, before)) == 1


def test_stall_past_the_read_timeout(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(APITimeoutError, match=r"did not answer within 0\.5 s"):
        client.chat(request(emulator, fault="stall=3", read_timeout=0.5, max_retries=0))


def test_stall_after_output_began_keeps_the_partial(emulator: Any, client: ChatClient) -> None:
    with pytest.raises(StreamInterrupted, match="went quiet") as info:
        client.chat(request(emulator, fault="stall=3,stall_after=4", read_timeout=0.5, max_retries=0))
    assert info.value.partial is not None and info.value.partial.reasoning


def test_keepalives_count_as_activity() -> None:
    config = EmulatorConfig(api_key=KEY, ttft=1.5, keepalive_interval=0.2)
    with run_in_thread(config) as emu, ChatClient() as chat_client:
        reply = chat_client.chat(request(emu, read_timeout=0.8))
    assert reply.content


def test_malformed_chunk_is_skipped_and_reported(emulator: Any, client: ChatClient) -> None:
    clean = client.chat(request(emulator, seed=11))
    reply = client.chat(request(emulator, seed=11, fault="malformed_after=3"))
    assert reply.content == clean.content
    assert reply.warnings == ["1 malformed stream chunk(s) were skipped"]


def test_unreachable_server(client: ChatClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings.build(base_url=f"http://127.0.0.1:{port}", api_key=KEY, max_retries=1, backoff_base=0.01)
    with pytest.raises(APIConnectionError, match=r"could not reach DeepSeek at 127\.0\.0\.1"):
        client.chat(ChatRequest(ASK, settings))


def test_fallback_base_url_when_the_first_cannot_be_reached(
    emulator: Any, client: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepseek_magic import providers
    from deepseek_magic.providers.openai_compat import OpenAICompatProvider

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fallback = OpenAICompatProvider("evolink", "Evolink", base_urls=(dead, emulator.base_url))
    monkeypatch.setitem(providers._cache, "evolink", fallback)
    settings = Settings.build(provider="evolink", api_key=KEY, max_retries=0)
    assert client.chat(ChatRequest(ASK, settings)).content


def test_interrupt_keeps_partial_and_closes_the_connection(emulator: Any, client: ChatClient) -> None:
    acc = Accumulator()
    count = 0

    def stop_after_five(event: Event) -> None:
        nonlocal count
        count += 1
        if count == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.chat(request(emulator), on_event=stop_after_five, accumulator=acc)
    assert acc.reasoning or acc.content
    assert client.chat(request(emulator)).content, "the client still works afterwards"


def test_events_generator_matches_chat(emulator: Any, client: ChatClient) -> None:
    events = list(client.events(request(emulator, seed=5)))
    acc = Accumulator()
    for event in events:
        acc.add(event)
    via_events, via_chat = acc.reply(), client.chat(request(emulator, seed=5))
    via_events.id = via_chat.id  # each response has its own id
    assert via_events == via_chat


def test_models_and_balance(emulator: Any, client: ChatClient) -> None:
    settings = Settings.build(base_url=emulator.base_url, api_key=KEY)
    assert {"deepseek-v4-flash", "deepseek-v4-pro"} <= set(client.models(settings))
    assert client.balance(settings)["is_available"] is True


def test_async_client_streams_concurrently(emulator: Any) -> None:
    async def run() -> list[str]:
        async with AsyncChatClient() as async_client:
            replies = await asyncio.gather(
                *(async_client.chat(request(emulator, [{"role": "user", "content": f"item {i}"}])) for i in range(6))
            )
        return [reply.content for reply in replies]

    contents = asyncio.run(run())
    assert len(contents) == 6 and all(contents)
    assert contents[0] != contents[1]


def test_async_client_retries_and_interrupts_like_the_sync_one(emulator: Any) -> None:
    async def run() -> None:
        async with AsyncChatClient() as async_client:
            emulator.config.faults.append("status=503")
            assert (await async_client.chat(request(emulator, max_retries=1))).content
            with pytest.raises(StreamInterrupted):
                await async_client.chat(request(emulator, fault="drop_after=4"))
            events = [e async for e in async_client.events(request(emulator, seed=2))]
            assert any(isinstance(e, ContentDelta) for e in events)

    asyncio.run(run())


# ------------------------------------------------------------------------ pure helpers


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_delay_backs_off_and_respects_limits() -> None:
    settings = Settings.build(max_retries=3, backoff_base=1, backoff_max=3)
    delays = [retry_delay(settings, attempt, None) for attempt in range(3)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 1.5 <= delays[2] <= 3  # type: ignore[operator]
    assert retry_delay(settings, 3, None) is None
    assert retry_delay(settings, 0, 120.0) is None, "a Retry-After too long is not waited for"


def test_server_messages_are_redacted() -> None:
    key = "sk-live-canary-1234567890"
    error = status_error(401, {"error": {"message": f"bad key {key}"}}, provider="DeepSeek", secrets=(key,))
    assert key not in str(error) and "sk-…90" in str(error)
    octet = status_error(400, "plain text failure", provider="DeepSeek")
    assert "plain text failure" in str(octet)


# ------------------------------------------- a server that repeats the key: every occurrence is masked

TWICE_KEY = "sk-live-canary-1234567890"
TWICE_MASK = "sk-…90"  # first three characters, an ellipsis, the last two: written out, not computed


@pytest.fixture(scope="module")
def echoing_server() -> Iterator[str]:
    """A raw HTTP server on 127.0.0.1 whose error bodies name the presented key twice.

    The path picks the answer: ``/401`` a JSON error, ``/502`` a plain-text body, ``/stream`` a 200 event
    stream that reports the error after one chunk of content.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            said = f"key {key} is revoked; do not send {key} again"
            if self.path.startswith("/401"):
                status, kind, body = 401, "application/json", json.dumps({"error": {"message": said}})
            elif self.path.startswith("/502"):
                status, kind, body = 502, "text/plain", said
            else:
                chunk = {"id": "x", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
                status, kind = 200, "text/event-stream"
                body = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps({'error': {'message': said}})}\n\n"
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("path", "error_type"),
    [("/401", AuthenticationError), ("/502", ServerError), ("/stream", StreamInterrupted)],
)
def test_a_key_the_server_repeats_is_masked_every_time(
    echoing_server: str, client: ChatClient, path: str, error_type: type
) -> None:
    settings = Settings.build(base_url=echoing_server + path, api_key=TWICE_KEY, max_retries=0)
    with pytest.raises(error_type) as info:
        client.chat(ChatRequest(ASK, settings))
    message = str(info.value)
    assert TWICE_KEY not in message and TWICE_KEY not in repr(vars(info.value))
    assert f"key {TWICE_MASK} is revoked; do not send {TWICE_MASK} again" in message
    if isinstance(info.value, APIStatusError):
        assert info.value.server_message == f"key {TWICE_MASK} is revoked; do not send {TWICE_MASK} again"


def test_redact_masks_every_occurrence_of_every_secret() -> None:
    other = "ak-second-secret-abcdef"
    text = f"{TWICE_KEY}|{other}|{TWICE_KEY}{TWICE_KEY}|{other}"
    assert redact(text, TWICE_KEY, other) == f"{TWICE_MASK}|ak-…ef|{TWICE_MASK}{TWICE_MASK}|ak-…ef"
    assert redact("short abc and abc", "abc") == "short abc and abc", "secrets under four characters are left"
    assert redact("pin abcd and abcd", "abcd") == "pin **** and ****", "four characters are a secret"
    assert redact("pin 12345678 and 12345678", "12345678") == "pin **** and ****", "eight or fewer: fully masked"
    assert redact("nothing here", None, "") == "nothing here"


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (400, InvalidRequestError, "The request was refused"),
        (401, AuthenticationError, "Authentication failed"),
        (402, InsufficientBalanceError, "Insufficient balance"),
        (404, NotFoundError, "Not found"),
        (422, InvalidRequestError, "Invalid parameters"),
        (429, RateLimitError, "Rate limited (too many requests at once)"),
        (500, ServerError, "The provider had a server error"),
        (502, ServerError, "The provider's gateway failed"),
        (503, ServerError, "The provider is overloaded"),
        (504, ServerError, "The provider's gateway timed out"),
        (507, ServerError, "The request failed"),
        (418, APIStatusError, "The request failed"),
    ],
)
def test_each_status_has_its_error_type_and_words(status: int, error_type: type, words: str) -> None:
    error = status_error(status, None, provider="Evolink")
    assert type(error) is error_type
    assert str(error).startswith(f"{words} (Evolink, HTTP {status})")
    assert error.status_code == status and error.server_message is None


def test_status_error_reads_every_field_of_deepseeks_envelope() -> None:
    body = {"error": {"message": "max_tokens too large", "type": "invalid_request_error", "code": 7, "param": "x"}}
    error = status_error(400, body, provider="DeepSeek", trace_id="trace-1", retry_after=2.5)
    assert str(error) == "The request was refused (DeepSeek, HTTP 400): max_tokens too large"
    assert (error.server_message, error.code, error.param) == ("max_tokens too large", "7", "x")
    assert (error.trace_id, error.retry_after) == ("trace-1", 2.5)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"error": "quota gone"}, ("quota gone", None, None)),
        (
            {"errors": [{"message": "bad prompt", "code": "invalidPositivePrompt", "parameter": "positivePrompt"}]},
            ("bad prompt", "invalidPositivePrompt", "positivePrompt"),
        ),
        ({"errors": ["not an object"], "message": "fallback"}, ("fallback", None, None)),
        ({"errors": [], "message": "fallback"}, ("fallback", None, None)),
        ({"message": None}, (None, None, None)),
        ({"detail": "no known field"}, (None, None, None)),
        ("  upstream said no \n", ("upstream said no", None, None)),
        ("   ", (None, None, None)),
        ("x" * 600, ("x" * 500, None, None)),
        ([1, 2], (None, None, None)),
    ],
)
def test_status_error_reads_other_error_shapes(body: Any, fields: tuple[str | None, ...]) -> None:
    error = status_error(502, body, provider="Runware")
    assert (error.server_message, error.code, error.param) == fields
    expected = "The provider's gateway failed (Runware, HTTP 502)"
    assert str(error) == (f"{expected}: {fields[0]}" if fields[0] else expected)


def test_mask_keeps_three_and_two_characters_of_keys_longer_than_eight() -> None:
    assert mask("123456789") == "123…89"
    assert mask("12345678") == "****"
    assert mask("sk-0123456789abcdef") == "sk-…ef"


def test_401_and_402_end_with_what_to_do() -> None:
    auth = status_error(401, {"error": {"message": "bad key"}}, provider="DeepSeek")
    assert str(auth) == (
        "Authentication failed (DeepSeek, HTTP 401): bad key "
        "Set the key with %deepseek settings or the provider's API key environment variable."
    )
    balance = status_error(402, None, provider="DeepSeek")
    assert (
        str(balance)
        == "Insufficient balance (DeepSeek, HTTP 402) Top up the account (%deepseek balance shows what is left)."
    )
    assert balance._render_traceback_() == [f"InsufficientBalanceError: {balance}"]
