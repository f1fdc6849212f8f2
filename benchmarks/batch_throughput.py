"""How close does a batch come to the time the server alone needs?

1,000 rows against the emulator answering after 200 ms, at concurrency 64.
If nothing but the server's latency mattered, the batch would take
``ceil(1000 / 64) × 0.2 s`` (16 rounds: 3.2 s); ``wall / ideal`` says how much
the client adds on top (target: at most 1.15).

In the same run, a naive peer does the same work by hand: ``asyncio.gather``
over raw ``httpx.AsyncClient`` posts behind a semaphore of 64, parsing each
JSON body, no cache, no DataFrame. Both send non-streamed requests (the
batch's default), and every reply must come back without error.

The emulator runs in a separate process (``python -m deepseek_magic.emulator``),
as a real API would be somewhere else: in-process, its CPU time would be
charged to the client under test. ``--in-process`` runs it in a thread anyway.

Wall times are the best of ``--repeat`` runs without tracing; peak memory is
measured in one more run under ``tracemalloc`` (which slows Python down, so
its time is not reported). Run::

    python benchmarks/batch_throughput.py [--rows 1000] [--concurrency 64] [--latency 0.2] [--repeat 3] [--check]

The exit code is 0 (it is a report) unless ``--check`` is given and the batch
is above the target or lost a row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import math
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

try:  # so that the script also runs from a checkout that is not installed
    import deepseek_magic  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas  # noqa: F401  (imported up front: a one-off import is not batch throughput)

from deepseek_magic import Session, Settings
from deepseek_magic.batch import run_batch

TARGET_RATIO = 1.15
API_KEY = "sk-bench"
MODEL = "deepseek-v4-flash"
TEMPLATE = "Write one line about item {item}"


@contextlib.contextmanager
def emulator(latency: float, in_process: bool) -> Iterator[str]:
    """An emulator answering after ``latency`` seconds; yields its base URL."""
    if in_process:
        from deepseek_magic.emulator import EmulatorConfig, run_in_thread

        with run_in_thread(EmulatorConfig(api_key=API_KEY, ttft=latency)) as emu:
            yield emu.base_url
        return
    command = [sys.executable, "-m", "deepseek_magic.emulator", "--port", "0", "--tps", "0"]
    command += ["--ttft", str(latency), "--api-key", API_KEY]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        if not url.startswith("http://"):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def ours(url: str, rows: int, concurrency: int) -> int:
    """deepseek_magic's batch; returns the number of good rows."""
    session = Session(settings=Settings.build(base_url=url, api_key=API_KEY, model=MODEL))
    result = run_batch(session, list(range(rows)), TEMPLATE, concurrency=concurrency, cache=None)
    errors = result["error"].dropna()
    if len(errors):
        print(f"  run_batch: {len(errors)} row error(s), e.g. {errors.iloc[0]}", file=sys.stderr)
    return rows - len(errors)


def naive(url: str, rows: int, concurrency: int) -> int:
    """The by-hand peer: gather over raw httpx posts with a semaphore; returns the number of good rows."""

    async def gather_all() -> int:
        semaphore = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def one(item: int) -> str:
                body = {"model": MODEL, "messages": [{"role": "user", "content": TEMPLATE.format(item=item)}]}
                async with semaphore:
                    response = await client.post(f"{url}/chat/completions", json=body, headers=headers)
                response.raise_for_status()
                content: str = response.json()["choices"][0]["message"]["content"]
                return content

            replies = await asyncio.gather(*(one(item) for item in range(rows)), return_exceptions=True)
        failures = [reply for reply in replies if not isinstance(reply, str)]
        if failures:
            print(f"  naive: {len(failures)} failure(s), e.g. {failures[0]!r}", file=sys.stderr)
        return rows - len(failures)

    return asyncio.run(gather_all())


def measure(run: Callable[[], int], repeat: int) -> tuple[float, int, int]:
    """Best wall time of ``repeat`` runs and the fewest good rows seen; then the peak traced memory of one more."""
    best = math.inf
    fewest = sys.maxsize
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        good = run()
        best = min(best, time.perf_counter() - started)
        fewest = min(fewest, good)
    gc.collect()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return best, peak, fewest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds before the emulator answers")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process")
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_RATIO}x or on a lost row")
    args = parser.parse_args(argv)

    ideal = math.ceil(args.rows / args.concurrency) * args.latency
    print(
        f"{args.rows} rows, concurrency {args.concurrency}, {args.latency * 1000:.0f} ms latency: "
        f"ideal = ceil({args.rows}/{args.concurrency}) x {args.latency} s = {ideal:.2f} s"
    )
    contenders: dict[str, Callable[[str], int]] = {
        "deepseek_magic run_batch": lambda url: ours(url, args.rows, args.concurrency),
        "naive gather + httpx": lambda url: naive(url, args.rows, args.concurrency),
    }
    figures: dict[str, tuple[float, int, int]] = {}
    with emulator(args.latency, args.in_process) as url:
        ours(url, min(args.rows, args.concurrency), args.concurrency)  # warm-up: imports, SSL context, emulator
        for name, contender in contenders.items():
            figures[name] = measure(functools.partial(contender, url), args.repeat)
    print(f"{'':26} {'wall':>8} {'ideal':>7} {'wall/ideal':>11} {'peak memory':>12} {'rows ok':>8}")
    for name, (wall, peak, good) in figures.items():
        shown = f"{wall / ideal:10.2f}x" if ideal else f"{'n/a':>11}"
        print(f"{name:26} {wall:7.2f}s {ideal:6.2f}s {shown} {peak / 2**20:10.1f} MiB {good:>8}")
    wall, _, good = figures["deepseek_magic run_batch"]
    ratio = wall / ideal if ideal else 0.0
    print(f"target: wall/ideal <= {TARGET_RATIO} -> {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    return 1 if args.check and (ratio > TARGET_RATIO or good != args.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
