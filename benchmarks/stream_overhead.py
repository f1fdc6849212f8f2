"""How much does deepseek_magic cost per streamed chunk, compared with doing it by hand?

A long DeepSeek V4 reply is tens of thousands of SSE chunks, and every one of
them goes through the client's decoding before the notebook can show it. If
that path is slow, a fast model looks slow. This script serves one
DeepSeek-shaped stream (20,000 chunks by default) from loopback and, in the
same run, times:

* ``socket floor``: read the raw bytes off the socket, nothing else; shows the
  server and the kernel are not the bottleneck;
* ``raw httpx``: ``httpx`` + ``iter_lines`` + ``json.loads`` and joining the
  deltas, the minimum useful work; every other row is a ratio to this;
* ``deepseek_magic``: :class:`deepseek_magic.client.ChatClient`, without and
  with an ``on_event`` callback (the magics always pass one);
* ``openai SDK``: the official SDK's streaming iterator.

Every consumer must produce the same content and reasoning text, which is
checked, so nobody wins by skipping work. Run::

    python benchmarks/stream_overhead.py [--chunks 20000] [--repeat 7] [--check]

The exit code is 0 (it is a report) unless ``--check`` is given and this
client is more than 1.5x raw httpx.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import socket
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

try:  # so that the script also runs from a checkout that is not installed
    import deepseek_magic  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepseek_magic.client import ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.events import Event
from deepseek_magic.providers import ChatRequest

#: The target from the project issue: this client at most 1.5x raw httpx.
TARGET_RATIO = 1.5
MODEL = "deepseek-v4-flash"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
API_KEY = "sk-bench"

# Pieces of text shaped like real tokens: mostly short ASCII words with a
# leading space, some punctuation, and some multi-byte UTF-8 so that network
# writes split characters and every decoder has to cope with that.
_REASONING_TOKENS = (
    "We", " need", " to", " answer", " the", " question", " about", " how", " many", " r",
    "'s", " in", " \"", "straw", "berry", "\".", " Let", " me", " count", ":", " s", "-t",
    "-r", "-a", "-w", " so", " that", "'s", " one", ",", " then", " two", " more", ".",
    " Hmm", "…", " café", " naïve", " 草莓", " —", " ok", "\n\n",
)  # fmt: skip
_CONTENT_TOKENS = (
    "The", " word", " “", "straw", "berry", "”", " has", " **", "3", "**", " r", "'s",
    ".", " ", "🍓", " Größe", " 中文", " 答案", "：", "三", "\n", "- ", "`r`", " é",
)  # fmt: skip


# ------------------------------------------------------------------ the stream


@dataclass
class Stream:
    """One pre-built HTTP response and what a correct client must extract from it."""

    chunks: int
    body: bytes
    #: The full HTTP/1.1 response (head + chunked body), cut into socket writes.
    writes: list[bytes]
    content: str
    reasoning: str
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def wire_bytes(self) -> int:
        return sum(len(piece) for piece in self.writes)


def build_stream(chunks: int, seed: int = 20_000) -> Stream:
    """Build ``chunks`` DeepSeek V4 chunks exactly as the API sends them.

    Layout follows the recorded fixture: a role chunk, reasoning deltas, then
    content deltas, a final chunk with ``finish_reason`` and ``usage``, and
    ``[DONE]``; a few ``: keep-alive`` comments come early, as DeepSeek sends
    them while the request waits in its queue. Built once, in memory, so the
    server only copies bytes.
    """
    if chunks < 3:
        raise ValueError("a stream needs at least 3 chunks (role, one delta, final)")
    rng = random.Random(seed)
    head = {
        "id": "b1e23612-29d5-4f66-b185-fb61fdde0ac9",
        "object": "chat.completion.chunk",
        "created": 1786782776,
        "model": MODEL,
        "system_fingerprint": "a26a7955944dc5c60445bff77fac9c8e",
    }

    def event(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        chunk = {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }
        return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    deltas = chunks - 2
    n_reasoning = deltas // 2
    reasoning = [rng.choice(_REASONING_TOKENS) for _ in range(n_reasoning)]
    content = [rng.choice(_CONTENT_TOKENS) for _ in range(deltas - n_reasoning)]
    usage = {
        "prompt_tokens": 97,
        "completion_tokens": deltas,
        "total_tokens": 97 + deltas,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": n_reasoning},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 97,
    }

    parts: list[bytes] = [b": keep-alive\n\n"]
    parts.append(event({"role": "assistant", "content": None, "reasoning_content": ""}))
    for i, text in enumerate(reasoning):
        if i in (3, 10, 40):  # a few more keep-alives near the start
            parts.append(b": keep-alive\n\n")
        parts.append(event({"content": None, "reasoning_content": text}))
    for text in content:
        parts.append(event({"content": text, "reasoning_content": None}))
    parts.append(event({"content": "", "reasoning_content": None}, finish="stop", usage=usage))
    parts.append(b"data: [DONE]\n\n")
    body = b"".join(parts)

    # Chunked transfer encoding in writes of 4-16 KiB, cut at arbitrary bytes
    # (inside JSON, inside UTF-8 sequences), as a real TCP stream arrives.
    writes = [
        b"HTTP/1.1 200 OK\r\n"
        b"content-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n"
        b"connection: close\r\n\r\n"
    ]
    position = 0
    while position < len(body):
        size = rng.randint(4096, 16384)
        piece = body[position : position + size]
        writes.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        position += size
    writes.append(b"0\r\n\r\n")
    return Stream(chunks, body, writes, "".join(content), "".join(reasoning), usage)


# ------------------------------------------------------------------ the server


class LoopbackServer:
    """A deliberately dumb HTTP server: it answers a bounded number of POSTs
    to ``/chat/completions`` with the pre-built stream, one connection at a
    time, in a daemon thread.

    Why not ``http.server``: its per-write overhead is Python's, and we want
    the server to cost as little as possible so that the differences
    measured are the clients'. Consumers run one after another, so there is
    no need for concurrency.
    """

    def __init__(self, stream: Stream, max_requests: int) -> None:
        self._stream = stream
        self._remaining = max_requests
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.served = 0
        self._thread = threading.Thread(target=self._serve, name="stream-server", daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while self._remaining > 0 and not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._remaining -= 1
            # OSError: the client went away; there is nothing to clean up.
            with conn, contextlib.suppress(OSError):
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            got = conn.recv(65536)
            if not got:
                return
            data += got
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            got = conn.recv(65536)
            if not got:
                return
            body += got
        if method != "POST" or path not in ("/chat/completions", "/v1/chat/completions"):
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            return
        self.served += 1
        sendall = conn.sendall
        for piece in self._stream.writes:
            sendall(piece)
        conn.shutdown(socket.SHUT_WR)


# ------------------------------------------------------------------ consumers

#: A consumer sends one request and returns ``(content, reasoning)``.
Consumer = Callable[[], tuple[str, str]]


def socket_floor(port: int, stream: Stream) -> Consumer:
    """Read the bytes and nothing else: the floor no HTTP client can beat."""
    request = (
        b"POST /chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )

    def run() -> tuple[str, str]:
        total = 0
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            recv = sock.recv
            while True:
                got = recv(262144)
                if not got:
                    break
                total += len(got)
        if total != stream.wire_bytes:
            raise AssertionError(f"socket floor read {total} bytes, expected {stream.wire_bytes}")
        return stream.content, stream.reasoning

    return run


def raw_httpx(client: httpx.Client, url: str) -> Consumer:
    """The baseline: what anyone would write in ten lines with httpx."""
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}

    def run() -> tuple[str, str]:
        content: list[str] = []
        reasoning: list[str] = []
        with client.stream("POST", url, json=body, headers=headers) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                choices = json.loads(data)["choices"]
                if choices:
                    delta = choices[0]["delta"]
                    text = delta.get("content")
                    if text:
                        content.append(text)
                    text = delta.get("reasoning_content")
                    if text:
                        reasoning.append(text)
        return "".join(content), "".join(reasoning)

    return run


def this_client(client: ChatClient, port: int, *, with_callback: bool) -> Consumer:
    """deepseek_magic's sync client, as the magics call it."""
    settings = Settings.build(base_url=f"http://127.0.0.1:{port}", api_key=API_KEY, max_retries=0)
    request = ChatRequest(list(MESSAGES), settings)
    on_event: Callable[[Event], None] | None = (lambda e: None) if with_callback else None

    def run() -> tuple[str, str]:
        reply = client.chat(request, on_event=on_event)
        if reply.usage is None or reply.finish_reason != "stop":
            raise AssertionError(f"incomplete reply: usage={reply.usage} finish={reply.finish_reason}")
        return reply.content, reply.reasoning

    return run


def openai_sdk(port: int) -> tuple[Consumer, Callable[[], None]] | None:
    """The official SDK's streaming iterator, or ``None`` when it is not installed."""
    try:
        import openai
    except ImportError:
        return None
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0)

    def run() -> tuple[str, str]:
        content: list[str] = []
        reasoning: list[str] = []
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        with stream:
            for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    content.append(delta.content)
                text = getattr(delta, "reasoning_content", None)
                if text:
                    reasoning.append(text)
        return "".join(content), "".join(reasoning)

    return run, client.close


# ------------------------------------------------------------------ measuring


@dataclass
class Result:
    """Timings (seconds) and peak traced memory (bytes) of one consumer."""

    name: str
    times: list[float] = field(default_factory=list)
    peak: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def check(name: str, got: tuple[str, str], stream: Stream) -> None:
    """Refuse to compare a consumer that did not extract the same text."""
    content, reasoning = got
    if content != stream.content or reasoning != stream.reasoning:
        raise AssertionError(
            f"{name} extracted different text: content {len(content)} vs {len(stream.content)} chars, "
            f"reasoning {len(reasoning)} vs {len(stream.reasoning)} chars"
        )


def timed(run: Consumer) -> tuple[float, tuple[str, str]]:
    gc.collect()
    start = time.perf_counter()
    got = run()
    return time.perf_counter() - start, got


def peak_memory(run: Consumer) -> int:
    """Peak bytes allocated by Python during one run (tracemalloc; slow, so untimed)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(consumers: dict[str, Consumer], stream: Stream, repeat: int, memory: bool) -> list[Result]:
    """Warm each consumer up once, then time them round-robin.

    Round-robin rather than one consumer after another, so that a slow
    period of the machine (another job, frequency scaling) spreads over all
    of them instead of penalising whichever ran then.
    """
    results = {name: Result(name) for name in consumers}
    for name, run in consumers.items():
        check(name, run(), stream)
    for _ in range(repeat):
        for name, run in consumers.items():
            elapsed, got = timed(run)
            check(name, got, stream)
            results[name].times.append(elapsed)
    if memory:
        for name, run in consumers.items():
            results[name].peak = peak_memory(run)
    return list(results.values())


def report(results: list[Result], stream: Stream, baseline: str) -> dict[str, float]:
    """Print the table; return each consumer's time ratio to ``baseline``."""
    base = next(r for r in results if r.name == baseline)
    print(
        f"stream: {stream.chunks} chunks, {len(stream.body) / 1e6:.2f} MB of SSE, "
        f"{len(stream.writes) - 2} socket writes; median of {len(base.times)} runs"
    )
    print()
    header = f"{'consumer':<30} {'median s':>9} {'chunks/s':>11} {'x raw httpx':>12} {'peak mem x (abs)':>20}"
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    for result in results:
        ratio = result.median / base.median
        ratios[result.name] = ratio
        memory = "-"
        if result.peak is not None and base.peak:
            memory = f"{result.peak / base.peak:.2f} ({result.peak / 2**20:.1f} MiB)"
        print(
            f"{result.name:<30} {result.median:>9.4f} {stream.chunks / result.median:>11,.0f} "
            f"{ratio:>12.2f} {memory:>20}"
        )
    print()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=20_000, help="SSE chunks in the stream (default 20000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per consumer (default 7)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc peak-memory run")
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 if this client is above {TARGET_RATIO}x raw httpx"
    )
    args = parser.parse_args(argv)

    stream = build_stream(args.chunks)
    consumer_count = 5
    # warm-up + timed runs + memory run, for every consumer, plus slack
    max_requests = consumer_count * (args.repeat + 2) + 5
    with LoopbackServer(stream, max_requests) as server, httpx.Client() as http, ChatClient() as ours:
        port = server.port
        consumers: dict[str, Consumer] = {
            "socket floor (bytes only)": socket_floor(port, stream),
            "raw httpx + json.loads": raw_httpx(http, f"http://127.0.0.1:{port}/chat/completions"),
            "deepseek_magic ChatClient": this_client(ours, port, with_callback=False),
            "deepseek_magic + on_event": this_client(ours, port, with_callback=True),
        }
        sdk = openai_sdk(port)
        if sdk is not None:
            consumers["openai SDK"] = sdk[0]
        try:
            results = measure(consumers, stream, args.repeat, memory=not args.no_memory)
        finally:
            if sdk is not None:
                sdk[1]()

    ratios = report(results, stream, baseline="raw httpx + json.loads")
    ours_ratio = ratios["deepseek_magic ChatClient"]
    callback_ratio = ratios["deepseek_magic + on_event"]
    print(f"ratio deepseek_magic/raw_httpx = {ours_ratio:.2f} (target <= {TARGET_RATIO})")
    print(f"ratio deepseek_magic+on_event/raw_httpx = {callback_ratio:.2f} (target <= {TARGET_RATIO})")
    if "openai SDK" in ratios:
        print(f"ratio openai_sdk/raw_httpx = {ratios['openai SDK']:.2f}")
    else:
        print("openai SDK not installed; its row was skipped")
    if args.check and max(ours_ratio, callback_ratio) > TARGET_RATIO:
        print(f"FAIL: deepseek_magic is above {TARGET_RATIO}x raw httpx", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
