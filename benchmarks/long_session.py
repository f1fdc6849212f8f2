"""A session holding ~1M tokens of history: how long the next request takes to build, and what save/load cost.

The history is built directly from ``Turn``/``Reply`` objects (no HTTP): ``--turns`` turns of
``--chars`` characters each (30% prompt, 50% answer, 20% reasoning), 400 × 10,000 characters by
default, i.e. ~4M characters ≈ 1M tokens at ~4 characters per token. Text is random words (ASCII),
each string its own object, as replies read from the network would be.

Figures printed:

* next request (median of ``--repeat`` runs): planning it (``session.exchange(...)`` +
  ``next_request()``: history → messages), the provider's body (``prepare``), and what a cell also
  does before bytes leave: the reply-cache key (on by default in the magics) and httpx encoding the
  JSON body; target: planning + body < 50 ms. ``json.dumps`` of the same body is the floor.
* save: time, and the peak of memory allocated while saving (tracemalloc) against the history's own
  size, with the naive peer ``json.dumps(session.to_dict())`` written in the same run.
* load: time, and the peak of memory allocated while loading against the loaded history's size (a
  loader that never holds two copies stays near 1×).

Run::

    python benchmarks/long_session.py [--turns 400] [--chars 10000] [--repeat 15] [--check]

The exit code is 0 (it is a report) unless ``--check`` is given and a target is missed
(build ≥ 50 ms, save peak ≥ 1.5× or load peak ≥ 1.5× the history).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import string
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import httpx

from deepseek_magic.client.cache import cache_key
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session, Turn
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.providers import get_provider

BUILD_TARGET_MS = 50.0
MEMORY_TARGET = 1.5
SETTINGS = Settings(api_key="sk-benchmark", base_url="http://127.0.0.1:9")


def random_text(size: int, seed: int = 7) -> str:
    """``size`` characters of random lowercase words."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 10))) for _ in range(20_000)]
    text = " ".join(rng.choices(words, k=size // 5 + 1))
    return text[:size]


def build_session(turns: int, chars: int) -> Session:
    """A session of ``turns`` complete turns, every string a fresh object sliced from one random text."""
    prompt, answer = int(chars * 0.3), int(chars * 0.5)
    reasoning = chars - prompt - answer
    source = random_text(chars * 8)
    session = Session("long", settings=SETTINGS)

    def piece(index: int, size: int) -> str:
        start = (index * 7919) % (len(source) - size)
        return source[start : start + size]

    for index in range(turns):
        reply = Reply(
            content=piece(3 * index, answer),
            reasoning=piece(3 * index + 1, reasoning),
            usage=Usage(prompt_tokens=1_000 + index * chars // 4, completion_tokens=chars // 5),
            finish_reason="stop",
            id=f"chatcmpl-{index}",
            model="deepseek-v4-flash",
        )
        turn = Turn(
            f"cell-{index}", piece(3 * index + 2, prompt), reply, model="deepseek-v4-flash", provider="deepseek"
        )
        session.turns.append(turn)
    return session


def history_chars(session: Session) -> int:
    return sum(len(t.prompt) + len(t.reply.content) + len(t.reply.reasoning) for t in session.turns)


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def peak_while(action: Callable[[], object]) -> tuple[int, int, object]:
    """(peak bytes allocated while ``action`` runs, bytes still held after it, its result)."""
    gc.collect()
    tracemalloc.start()
    result = action()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, current, result


def median_s(action: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``action`` without tracemalloc (which slows allocation down)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=400, help="turns in the history (default 400)")
    parser.add_argument("--chars", type=int, default=10_000, help="characters per turn (default 10000)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of the next-request build (median)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    session = build_session(args.turns, args.chars)
    build_s = time.perf_counter() - start
    history_bytes, _, _ = peak_while(lambda: build_session(args.turns, args.chars))
    chars = history_chars(session)
    print(f"python {sys.version.split()[0]}; httpx {httpx.__version__}")
    print(
        f"history: {len(session.turns)} turns, {chars:,} characters (~{chars // 4:,} tokens), "
        f"{mb(history_bytes)} in memory (built in {build_s:.2f} s)"
    )

    provider = get_provider("deepseek")
    http = httpx.Client()
    request = session.exchange("And the next question?", key="cell-next").next_request()
    assert request is not None
    call = provider.prepare(request)
    messages = len(call.body["messages"])
    plan_ms = median_ms(lambda: session.exchange("And the next question?", key="cell-next").next_request(), args.repeat)
    body_ms = median_ms(lambda: provider.prepare(request), args.repeat)
    key_ms = median_ms(lambda: cache_key(request), args.repeat)
    wire_ms = median_ms(lambda: http.build_request("POST", call.url, json=call.body), args.repeat)
    compact = {"ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}  # what httpx 0.28 passes
    floor_ms = median_ms(lambda: json.dumps(call.body, **compact).encode(), args.repeat)
    http.close()
    build_ms = plan_ms + body_ms
    print(f"\nnext request ({messages} messages; median of {args.repeat}):")
    print(f"  plan (exchange + next_request)       {plan_ms:8.2f} ms")
    print(f"  body (provider.prepare)              {body_ms:8.2f} ms")
    print(f"  = built                              {build_ms:8.2f} ms  (target < {BUILD_TARGET_MS:g} ms)")
    print(f"  reply-cache key (json.dumps+sha256)  {key_ms:8.2f} ms  (cells with the cache on)")
    print(f"  httpx encodes the JSON body          {wire_ms:8.2f} ms")
    print(f"  = to bytes, cache on                 {build_ms + key_ms + wire_ms:8.2f} ms")
    print(f"  peer: json.dumps(body).encode()      {floor_ms:8.2f} ms  (the encoding floor)")

    folder = Path(tempfile.mkdtemp(prefix="long_session_"))
    target, naive = folder / "session.json", folder / "naive.json"
    save_s = median_s(lambda: session.save(target))
    naive_s = median_s(lambda: naive.write_text(json.dumps(session.to_dict(), ensure_ascii=False)))
    save_peak, _, _ = peak_while(lambda: session.save(target))
    naive_peak, _, _ = peak_while(lambda: naive.write_text(json.dumps(session.to_dict(), ensure_ascii=False)))
    size = target.stat().st_size
    turns_before = [turn.to_dict() for turn in session.turns]
    load_s = median_s(lambda: Session.load(target, settings=SETTINGS))
    load_peak, loaded_bytes, loaded = peak_while(lambda: Session.load(target, settings=SETTINGS))
    assert isinstance(loaded, Session)
    same = [turn.to_dict() for turn in loaded.turns] == turns_before
    save_ratio = (history_bytes + save_peak) / history_bytes
    naive_ratio = (history_bytes + naive_peak) / history_bytes
    load_ratio = load_peak / loaded_bytes
    print(f"\nsave/load ({mb(size)} file; memory = peak held while it runs, history included):")
    print(f"  save   {save_s:6.3f} s  peak +{mb(save_peak):>9}  = {save_ratio:.2f}x the history")
    print(f"  naive  {naive_s:6.3f} s  peak +{mb(naive_peak):>9}  = {naive_ratio:.2f}x  (json.dumps(to_dict()))")
    print(f"  load   {load_s:6.3f} s  peak  {mb(load_peak):>9}  = {load_ratio:.2f}x the loaded {mb(loaded_bytes)}")
    print(f"  round trip equal: {same}")
    print(f"ratio save_peak/history = {save_ratio:.2f} (target < {MEMORY_TARGET})")
    print(f"ratio naive_save_peak/history = {naive_ratio:.2f}")
    print(f"ratio load_peak/history = {load_ratio:.2f} (target < {MEMORY_TARGET})")
    for path in (target, naive):
        path.unlink()
    os.rmdir(folder)

    missed = [
        name
        for name, bad in (
            (f"build {build_ms:.1f} ms", build_ms >= BUILD_TARGET_MS),
            (f"save {save_ratio:.2f}x", save_ratio >= MEMORY_TARGET),
            (f"load {load_ratio:.2f}x", load_ratio >= MEMORY_TARGET),
            ("round trip", not same),
        )
        if bad
    ]
    if missed:
        print("missed: " + ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
