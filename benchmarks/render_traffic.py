"""How many bytes does the widget view send to the browser while a long reply streams?

ipywidgets has no "append": every ``HTML.value = ...`` ships the whole string,
so a view that re-renders the reply into one widget sends O(n²) bytes over a
reply. :class:`deepseek_magic.ui.widget_view.WidgetReplyView` freezes
finished Markdown blocks into their own widgets and re-sends only the growing
tail. This script streams a 100,000-character Markdown answer (paragraphs,
headings, code blocks, tables, lists) after ~20,000 characters of reasoning
through it, with ``comm.create_comm`` replaced by a comm that records every
message and its size as JSON, and prints:

* updates/s: flushes that sent something, per second of streaming
  (target <= 20; the view's throttle allows at most 10);
* bytes ratio: comm payload bytes sent / JSON size of the final rendered reply
  (the static ``text/html`` it leaves behind; target <= 3);

for the view and for a naive peer that re-sends the whole rendered HTML at
each (equally throttled) update.

Two runs:

1. **wall clock** (the issue's set-up): the events are fed at full speed, but
   spread over ``--seconds`` (3 s) of real time by sleeping in small steps
   between batches, so the throttle measures real time and updates/s means
   something. That is ~33,000 characters per second, far faster than a model.
2. **model speed** (the view only): the same stream at ``--tokens-per-second``
   (one delta per token, DeepSeek's shape), on a simulated clock so it takes
   seconds instead of minutes. Slow streams are the hard case for traffic: each
   update carries a few new characters but re-sends the whole tail. The naive
   peer would take minutes here, so only its lower bound is printed (the raw
   text length at each update, before any HTML is added).

Payload bytes exclude the kernel message envelope (~300 bytes per message),
so the message count is printed too. Run::

    python benchmarks/render_traffic.py [--seconds 3] [--tokens-per-second 60] [--check]

Exit code 0 unless ``--check`` is given and a wall-clock target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import comm
import ipywidgets as widgets
from comm.base_comm import BaseComm

try:  # so that the script also runs from a checkout that is not installed
    import deepseek_magic  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepseek_magic.core.events import Accumulator, ContentDelta, Event, Finish, ReasoningDelta, Reply, Usage
from deepseek_magic.ui import progress as progress_module
from deepseek_magic.ui import static
from deepseek_magic.ui import throttle as throttle_module
from deepseek_magic.ui.render import escape_text, markdown_to_html
from deepseek_magic.ui.throttle import Throttle
from deepseek_magic.ui.widget_view import WidgetReplyView

TARGET_UPDATES_PER_S = 20.0
TARGET_BYTES_RATIO = 3.0
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


def make_events(answer: str, reasoning: str, *, delta: int = 4) -> list[Event]:
    """One delta per ~token (DeepSeek sends about one token per chunk), then usage and finish."""
    events: list[Event] = [ReasoningDelta(reasoning[i : i + delta]) for i in range(0, len(reasoning), delta)]
    events += [ContentDelta(answer[i : i + delta]) for i in range(0, len(answer), delta)]
    tokens = (len(answer) + len(reasoning)) // delta
    events += [Usage(1_000, tokens, 1_000 + tokens, reasoning_tokens=len(reasoning) // delta), Finish("stop")]
    return events


# ---------------------------------------------------------- recording comm


class RecordingComm(BaseComm):
    """A comm that keeps (message type, JSON payload size) for every message it would publish."""

    log: ClassVar[list[tuple[str, int]]] = []

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        RecordingComm.log.append((msg_type, len(json.dumps(data or {}, default=str).encode())))


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, int]]]:
    log: ClassVar[list[tuple[str, int]]] = []
    saved_log, saved_create = RecordingComm.log, comm.create_comm
    RecordingComm.log = log
    comm.create_comm = RecordingComm
    try:
        yield log
    finally:
        comm.create_comm, RecordingComm.log = saved_create, saved_log


class _Handle:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def update(self, data: dict[str, str], **_: Any) -> None:
        self.data = data


# ------------------------------------------------------------- the peer


class NaiveWidgetView:
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


# ----------------------------------------------------------------- runs


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    messages: int
    sent: int
    final: int

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.sent / self.final


def _drive(view: Any, handle: _Handle, events: list[Event], pace: Callable[[int], None]) -> Reply:
    acc = Accumulator()
    view.start()
    for index, event in enumerate(events):
        acc.add(event)
        view.on_event(event)
        pace(index)
    reply = acc.reply()
    view.finish(reply)
    return reply


def run_wall_clock(name: str, make_view: Callable[..., Any], events: list[Event], seconds: float, steps: int) -> Result:
    """Feed ``events`` at full speed in ``steps`` batches, sleeping between them to span ``seconds``."""
    handle = _Handle()
    batch = max(1, len(events) // steps)
    pause = seconds / steps

    def pace(index: int) -> None:
        if index % batch == batch - 1:
            time.sleep(pause)

    with recording() as log:
        view = make_view(HEADER, interval=0.1, display=lambda *a, **k: handle)
        began = time.perf_counter()
        _drive(view, handle, events, pace)
        elapsed = time.perf_counter() - began
    final = len(json.dumps(handle.data["text/html"]).encode())
    return Result(name, view.updates, elapsed, len(log), sum(size for _, size in log), final)


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


def run_model_speed(events: list[Event], tokens_per_second: float) -> tuple[Result, int]:
    """The view at model speed on a simulated clock; also the naive peer's lower bound in bytes."""
    handle = _Handle()
    step = 1.0 / tokens_per_second
    text_so_far = [0]
    naive_floor = [0]
    naive_throttle: list[Throttle] = []

    with simulated_clock() as now, recording() as log:
        naive_throttle.append(Throttle(0.1))

        def pace(index: int) -> None:
            event = events[index]
            if isinstance(event, (ReasoningDelta, ContentDelta)):
                text_so_far[0] += len(event.text)
                if naive_throttle[0].due():
                    naive_floor[0] += text_so_far[0]
            now[0] += step

        view = WidgetReplyView(HEADER, interval=0.1, display=lambda *a, **k: handle)
        began = now[0]
        _drive(view, handle, events, pace)
        elapsed = now[0] - began
    final = len(json.dumps(handle.data["text/html"]).encode())
    return Result("WidgetReplyView", view.updates, elapsed, len(log), sum(size for _, size in log), final), naive_floor[
        0
    ]


def _row(result: Result) -> str:
    return (
        f"  {result.name:<18} {result.updates:>7,} updates  {result.seconds:6.1f} s  {result.per_second:6.1f}/s"
        f"  {result.messages:>7,} msgs  {result.sent:>13,} B sent  {result.ratio:8.2f}x final"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--answer-chars", type=int, default=100_000)
    parser.add_argument("--reasoning-chars", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time to spread the stream over")
    parser.add_argument("--steps", type=int, default=300, help="sleeps between event batches")
    parser.add_argument("--tokens-per-second", type=float, default=60.0, help="model speed of the second run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a wall-clock target is missed")
    args = parser.parse_args(argv)

    answer = make_answer(args.answer_chars)
    reasoning = make_reasoning(args.reasoning_chars)
    events = make_events(answer, reasoning)
    deltas = sum(isinstance(e, (ReasoningDelta, ContentDelta)) for e in events)
    print(f"reply: {len(answer):,} chars of Markdown answer, {len(reasoning):,} of reasoning, {deltas:,} deltas")

    print(f"\n1. wall clock: full speed, spread over ~{args.seconds:g} s in {args.steps} sleeps")
    ours = run_wall_clock("WidgetReplyView", WidgetReplyView, events, args.seconds, args.steps)
    naive = run_wall_clock("naive (one HTML)", NaiveWidgetView, events, args.seconds, args.steps)
    print(_row(ours))
    print(_row(naive))
    print(f"  final rendered reply: {ours.final:,} B; naive sends {naive.sent / ours.sent:.1f}x the bytes of the view")

    modelled, naive_floor = run_model_speed(events, args.tokens_per_second)
    print(f"\n2. model speed: {args.tokens_per_second:g} deltas/s on a simulated clock")
    print(_row(modelled))
    rate, messages = modelled.sent / modelled.seconds / 1000, modelled.messages / modelled.seconds
    print(f"  that is {rate:.1f} kB/s in {messages:.0f} msgs/s")
    print(
        f"  naive (one HTML)   >= {naive_floor:,} B sent (raw text at each update; "
        f">= {naive_floor / modelled.final:.0f}x final, {naive_floor / modelled.sent:.0f}x the view)"
    )

    ok = ours.per_second <= TARGET_UPDATES_PER_S and ours.ratio <= TARGET_BYTES_RATIO
    print(
        f"\ntargets (wall clock): <= {TARGET_UPDATES_PER_S:g} updates/s, <= {TARGET_BYTES_RATIO:g}x bytes: "
        + ("met" if ok else "MISSED")
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
