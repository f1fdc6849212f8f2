"""What the streaming views send to the browser, what they cost the kernel, and how late a token is shown.

Three peers are measured in the same run, on the same events:

* **live** — :class:`deepseek_magic.ui.widget_view.WidgetReplyView`, the live
  reply widget: one message per update with only what is new (reasoning text,
  answer text, each finished Markdown block once as sanitized HTML);
* **blocks** — the previous widget view (``benchmarks/blocks_view.py``, kept
  only here): finished blocks frozen into their own ``HTML`` widgets, the open
  block re-rendered and re-sent whole on every update, reasoning cut every
  1,000 characters;
* **one HTML** — the naivest view: one ``HTML`` widget re-rendered and
  re-sent whole on every update (only with ``--one-html``, at full speed: it
  is so slow that the run takes minutes, and at a model's pace hours);

and the text view (:class:`deepseek_magic.ui.display_view.DisplayHandleView`),
whose kernel CPU is the yardstick for the table run.

Traffic is measured as the frontend receives it: ``comm.create_comm`` is
replaced by a comm that records the JSON payload (``data``) of every message
it would publish (the kernel's envelope, ~300 bytes a message, is left out;
the message count is printed). "bytes/final" is that total over the JSON size
of the final rendered reply (the static ``text/html`` the view leaves behind).

Runs:

1. **full speed**: a 100,000-character Markdown answer after 20,000 characters
   of reasoning, fed as fast as the views take it, spread over ``--seconds``
   of real time so the throttle measures real time;
2. **model pace**: the same reply at ``--deltas-per-second`` (80, one
   DeepSeek delta of ~4 characters each), on a simulated clock;
3. **table**: a ``--table-rows`` (2,000) row Markdown table at 200 deltas/s on
   a simulated clock; kernel CPU (``time.process_time``) of each view over the
   text view's (the blocks peer on ``--blocks-table-rows``, 400, because its
   cost grows with the square of the table);
4. **pause**: a real loopback server streams a token, another 30 ms later,
   then 1.5 s of silence; a real :class:`~deepseek_magic.Session` reads it
   (through the magics' path: ``on_idle`` = the view's ``tick``), and the
   delay from the server writing the second token to the frontend receiving it
   is printed for every view.

Run::

    python benchmarks/render_traffic.py [--table-rows 2000] [--check]

Targets (``--check`` exits 1 when one is missed): live bytes/final <= 3 at full
speed and at model pace, <= 20 updates/s, the table at <= 3x bytes and <= 3x
the text view's kernel CPU, and every view's delay after a pause <= 150 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import comm
import ipywidgets as widgets
from comm.base_comm import BaseComm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # blocks_view.py, the previous view
try:  # so that the script also runs from a checkout that is not installed
    import deepseek_magic  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blocks_view import BlocksWidgetView

from deepseek_magic import Session, Settings
from deepseek_magic.core.events import Accumulator, ContentDelta, Event, Finish, ReasoningDelta, Reply, Usage
from deepseek_magic.ui import progress as progress_module
from deepseek_magic.ui import static
from deepseek_magic.ui import throttle as throttle_module
from deepseek_magic.ui.display_view import DisplayHandleView
from deepseek_magic.ui.render import escape_text, markdown_to_html
from deepseek_magic.ui.throttle import Throttle
from deepseek_magic.ui.widget_view import WidgetReplyView

TARGET_UPDATES_PER_S = 20.0
TARGET_BYTES_RATIO = 3.0
TARGET_CPU_RATIO = 3.0
TARGET_DELAY = 0.150
HEADER = static.ReplyHeader("deepseek", "deepseek-v4-pro", True, "high")
WORDS = (  # noqa: SIM905 - a sentence reads better than a 40-line list
    "the model answer stream token widget kernel browser notebook render block tail frozen cost bytes "
    "update reply reasoning markdown table list code value string comm message frontend cell output "
    "throttle interval flush latency python data frame column row index series"
).split()


# ---------------------------------------------------------------- the reply


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    if rng.random() < 0.3:
        words[2] = f"**{words[2]}**"
    if rng.random() < 0.2:
        words[5] = f"`{words[5]}()`"
    if rng.random() < 0.1:
        words[7] = f"[{words[7]}](https://example.com/{words[7]})"
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))


def make_answer(size: int, seed: int = 7) -> str:
    """Markdown like a long technical answer: sections of paragraphs, a list, a table, a code block."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    section = 0
    while total < size:
        section += 1
        chunk = [f"## Section {section}", _paragraph(rng), _paragraph(rng)]
        kind = section % 3
        if kind == 0:
            chunk.append("\n".join(f"{n}. {_sentence(rng)}" for n in range(1, rng.randint(5, 10))))
        elif kind == 1:
            rows = [f"| {rng.choice(WORDS)} | {rng.randint(0, 9999)} | {_sentence(rng)[:40]} |" for _ in range(12)]
            chunk.append("\n".join(["| name | count | note |", "|---|--:|---|", *rows]))
        else:
            body = "\n".join(
                f"    {rng.choice(WORDS)}_{n} = compute({rng.choice(WORDS)!r}, {rng.randint(0, 99)})" for n in range(40)
            )
            chunk.append(f"```python\ndef section_{section}():\n{body}\n    return locals()\n```")
        chunk.append(_paragraph(rng))
        text = "\n\n".join(chunk) + "\n\n"
        parts.append(text)
        total += len(text)
    return "".join(parts)[:size]


def make_reasoning(size: int, seed: int = 8) -> str:
    """Plain prose with line breaks, like DeepSeek's ``reasoning_content``."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(_sentence(rng).replace("**", "").replace("`", "") for _ in range(rng.randint(1, 4)))
        lines.append(line + ("\n\n" if rng.random() < 0.3 else "\n"))
        total += len(lines[-1])
    return "".join(lines)[:size]


def make_table(rows: int, seed: int = 9) -> str:
    """A Markdown table such as "list every … as a table" produces: a short intro, then ``rows`` rows."""
    rng = random.Random(seed)
    lines = ["Here is the table you asked for.", "", "| id | name | count | note |", "|--:|---|--:|---|"]
    lines += [
        f"| {n} | {rng.choice(WORDS)}_{rng.choice(WORDS)} | {rng.randint(0, 99999)} | {_sentence(rng)[:36]} |"
        for n in range(1, rows + 1)
    ]
    return "\n".join(lines) + "\n\nThat is all of them.\n"


def make_events(answer: str, reasoning: str = "", *, delta: int = 4) -> list[Event]:
    """One delta per ~token (DeepSeek sends about one token per chunk), then usage and finish."""
    events: list[Event] = [ReasoningDelta(reasoning[i : i + delta]) for i in range(0, len(reasoning), delta)]
    events += [ContentDelta(answer[i : i + delta]) for i in range(0, len(answer), delta)]
    tokens = (len(answer) + len(reasoning)) // delta
    events += [Usage(1_000, tokens, 1_000 + tokens, reasoning_tokens=len(reasoning) // delta), Finish("stop")]
    return events


# ---------------------------------------------------------- recording comm


class RecordingComm(BaseComm):
    """A comm that keeps (time, JSON payload) of every message it would publish."""

    log: ClassVar[list[tuple[float, str]]] = []

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        RecordingComm.log.append((time.monotonic(), json.dumps(data or {}, default=str)))


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[float, str]]]:
    log: list[tuple[float, str]] = []
    saved_log, saved_create = RecordingComm.log, comm.create_comm
    RecordingComm.log = log
    comm.create_comm = RecordingComm
    try:
        yield log
    finally:
        comm.create_comm, RecordingComm.log = saved_create, saved_log


class Handle:
    """Stands in for IPython's display and its handle: keeps the last bundle and when each update came."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.updates: list[tuple[float, str]] = []

    def __call__(self, obj: Any, **_: Any) -> Handle:
        if isinstance(obj, dict):
            self.update(obj)
        return self

    def update(self, data: dict[str, str], **_: Any) -> None:
        self.data = data
        self.updates.append((time.monotonic(), json.dumps(data)))


# ------------------------------------------------------------- the naive peer


class OneHtmlView:
    """One HTML widget re-rendered and re-sent whole at each update (same throttle as the real view)."""

    def __init__(self, header: static.ReplyHeader, *, interval: float = 0.1, display: Callable[..., Any]) -> None:
        self._display = display
        self._throttle = Throttle(interval)
        self._acc = Accumulator()
        self.updates = 0

    def start(self) -> None:
        self.html = widgets.HTML()
        self._handle = self._display(self.html, display_id=True)

    def on_event(self, event: Event) -> None:
        self._acc.add(event)
        if isinstance(event, (ReasoningDelta, ContentDelta)) and self._throttle.due():
            self._send()

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self._send()
        self._handle.update(static.html_bundle(reply, None, None, status), raw=True)
        self.html.close()

    def _send(self) -> None:
        value = escape_text(self._acc.reasoning) + markdown_to_html(self._acc.content)
        if value != self.html.value:
            self.html.value = value
            self.updates += 1


VIEWS: dict[str, Callable[..., Any]] = {
    "live": WidgetReplyView,
    "blocks": BlocksWidgetView,
    "one HTML": OneHtmlView,
    "text view": DisplayHandleView,
}


# ----------------------------------------------------------------- traffic runs


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    messages: int
    sent: int
    final: int
    cpu: float

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.sent / self.final


def _drive(view: Any, events: list[Event], pace: Callable[[int], None]) -> Reply:
    acc = Accumulator()
    view.start()
    for index, event in enumerate(events):
        acc.add(event)
        view.on_event(event)
        pace(index)
    reply = acc.reply()
    view.finish(reply)
    return reply


def _measure(name: str, events: list[Event], pace: Callable[[int], None], clock: Callable[[], float]) -> Result:
    handle = Handle()
    with recording() as log:
        view = VIEWS[name](HEADER, display=handle)  # each view's own interval
        began, cpu = clock(), time.process_time()
        _drive(view, events, pace)
        cpu = time.process_time() - cpu
        elapsed = clock() - began
    final = len(json.dumps(handle.data["text/html"]).encode()) if "text/html" in handle.data else 0
    sent = sum(len(data.encode()) for _, data in log)
    if name == "text view":  # no comm: what it sends is its display updates
        sent = sum(len(data.encode()) for _, data in handle.updates)
    return Result(name, view.updates, elapsed, len(log) or len(handle.updates), sent, final, cpu)


def run_full_speed(name: str, events: list[Event], seconds: float, steps: int) -> Result:
    """Feed ``events`` at full speed in ``steps`` batches, sleeping between them to span ``seconds``."""
    batch = max(1, len(events) // steps)
    pause = seconds / steps

    def pace(index: int) -> None:
        if index % batch == batch - 1:
            time.sleep(pause)

    return _measure(name, events, pace, time.perf_counter)


@contextlib.contextmanager
def simulated_clock() -> Iterator[list[float]]:
    """The throttle's and progress's ``time.monotonic`` read a clock this script advances."""
    now = [1_000.0]
    fake = types.SimpleNamespace(monotonic=lambda: now[0])
    saved = throttle_module.time, progress_module.time
    throttle_module.time = fake  # type: ignore[assignment]
    progress_module.time = fake  # type: ignore[assignment]
    try:
        yield now
    finally:
        throttle_module.time, progress_module.time = saved


def run_paced(name: str, events: list[Event], per_second: float) -> Result:
    """``events`` at ``per_second`` deltas a second, on a simulated clock."""
    step = 1.0 / per_second
    with simulated_clock() as now:

        def pace(index: int) -> None:
            now[0] += step

        result = _measure(name, events, pace, lambda: now[0])
    return result


# ----------------------------------------------------------------- the pause run

FIRST, SECOND, LAST = "alpha", "beta", "gamma"


def _sse(content: str | None, *, finish: bool = False) -> bytes:
    delta = {} if content is None else {"content": content}
    chunk: dict[str, Any] = {
        "id": "bench",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if finish else None}],
    }
    if finish:
        chunk["usage"] = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class PausingServer:
    """A loopback server streaming ``alpha``, ``beta`` 30 ms later, 1.5 s of silence, then ``gamma``."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.sent_second: float | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(_sse(None))
                self.wfile.write(_sse(FIRST))
                time.sleep(0.03)
                self.wfile.write(_sse(" " + SECOND))
                outer.sent_second = time.monotonic()
                time.sleep(outer.pause)
                self.wfile.write(_sse(" " + LAST) + _sse(None, finish=True) + b"data: [DONE]\n\n")
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PausingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


def run_pause(name: str, pause: float) -> float:
    """Seconds from the server writing the second token to the frontend receiving it, through ``name``."""
    handle = Handle()
    with PausingServer(pause) as server, recording() as log:
        settings = Settings.build(api_key="sk-bench", base_url=server.url, thinking=False, max_retries=0)
        session = Session(settings=settings)
        view = VIEWS[name](HEADER, display=handle)
        view.start()
        reply = session.ask("Say three words.", on_event=view.on_event, on_idle=getattr(view, "tick", None))
        view.finish(reply)
    assert SECOND in reply.content and server.sent_second is not None
    shown = [moment for moment, data in [*log, *handle.updates] if SECOND in data]
    return min(shown) - server.sent_second


# ----------------------------------------------------------------------- report


def _row(result: Result, *, cpu_peer: Result | None = None) -> str:
    text = (
        f"  {result.name:<10} {result.updates:>7,} updates {result.seconds:7.1f} s {result.per_second:6.1f}/s"
        f" {result.messages:>7,} msgs {result.sent:>13,} B sent {result.ratio:7.2f}x final"
    )
    if cpu_peer is not None:
        text += f"  cpu {result.cpu:6.2f} s = {result.cpu / cpu_peer.cpu:5.2f}x text view"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--answer-chars", type=int, default=100_000)
    parser.add_argument("--reasoning-chars", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time to spread the full-speed run over")
    parser.add_argument("--steps", type=int, default=300, help="sleeps between event batches in the full-speed run")
    parser.add_argument("--deltas-per-second", type=float, default=80.0, help="pace of the model-pace run")
    parser.add_argument("--table-rows", type=int, default=2_000)
    parser.add_argument("--table-deltas-per-second", type=float, default=200.0)
    parser.add_argument("--blocks-table-rows", type=int, default=400, help="table size for the blocks peer")
    parser.add_argument("--one-html", action="store_true", help="also run the one-HTML peer at full speed (slow)")
    parser.add_argument("--pause", type=float, default=1.5, help="silence after the second token (pause run)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    answer = make_answer(args.answer_chars)
    reasoning = make_reasoning(args.reasoning_chars)
    events = make_events(answer, reasoning)
    deltas = sum(isinstance(e, (ReasoningDelta, ContentDelta)) for e in events)
    print(f"reply: {len(answer):,} chars of Markdown answer, {len(reasoning):,} of reasoning, {deltas:,} deltas")
    missed: list[str] = []

    print(f"\n1. full speed, spread over ~{args.seconds:g} s in {args.steps} sleeps")
    peers = ("live", "blocks", "one HTML") if args.one_html else ("live", "blocks")
    full = {name: run_full_speed(name, events, args.seconds, args.steps) for name in peers}
    for result in full.values():
        print(_row(result))

    print(f"\n2. model pace: {args.deltas_per_second:g} deltas/s (simulated clock)")
    paced = {name: run_paced(name, events, args.deltas_per_second) for name in ("live", "blocks")}
    for result in paced.values():
        print(_row(result))
    print("  one HTML   (not run: its bytes and its time grow with the square of the reply)")

    table_events = make_events(make_table(args.table_rows))
    print(f"\n3. a {args.table_rows:,}-row Markdown table at {args.table_deltas_per_second:g} deltas/s (simulated)")
    table = {name: run_paced(name, table_events, args.table_deltas_per_second) for name in ("text view", "live")}
    table["text view"].final = table["live"].final
    for name in ("live", "text view"):
        print(_row(table[name], cpu_peer=table["text view"]))
    small = make_events(make_table(args.blocks_table_rows))
    small_table = {name: run_paced(name, small, args.table_deltas_per_second) for name in ("text view", "blocks")}
    small_table["text view"].final = small_table["blocks"].final
    print(f"  the blocks peer on a {args.blocks_table_rows:,}-row table (its cost grows with the square of the table):")
    for name in ("blocks", "text view"):
        print(_row(small_table[name], cpu_peer=small_table["text view"]))

    print(f"\n4. a token, another 30 ms later, then {args.pause:g} s of silence (real loopback server)")
    delays = {name: run_pause(name, args.pause) for name in ("live", "text view", "blocks")}
    for name, delay in delays.items():
        note = "" if name != "blocks" else "  (no trailing flush: shown when the next token comes)"
        print(f"  {name:<10} second token shown {delay * 1000:7.0f} ms after it was sent{note}")

    live_full, live_paced, live_table = full["live"], paced["live"], table["live"]
    checks = {
        "bytes/final at full speed": live_full.ratio <= TARGET_BYTES_RATIO,
        "bytes/final at model pace": live_paced.ratio <= TARGET_BYTES_RATIO,
        "updates/s": max(live_full.per_second, live_paced.per_second) <= TARGET_UPDATES_PER_S,
        "table bytes/final": live_table.ratio <= TARGET_BYTES_RATIO,
        "table cpu / text view": live_table.cpu <= TARGET_CPU_RATIO * table["text view"].cpu,
        "delay after a pause (live)": delays["live"] <= TARGET_DELAY,
        "delay after a pause (text view)": delays["text view"] <= TARGET_DELAY,
    }
    missed = [name for name, ok in checks.items() if not ok]
    print(
        f"\ntargets: <= {TARGET_BYTES_RATIO:g}x bytes (full speed, model pace, table), <= {TARGET_UPDATES_PER_S:g}"
        f" updates/s, table cpu <= {TARGET_CPU_RATIO:g}x the text view, <= {TARGET_DELAY * 1000:.0f} ms after a pause: "
        + ("all met" if not missed else "MISSED " + ", ".join(missed))
    )
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    sys.exit(main())
