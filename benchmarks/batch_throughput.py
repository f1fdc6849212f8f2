"""How close does a batch come to the time the server alone needs, up to DeepSeek's account limit?

10,000 rows against a server that answers every request after 2 s
(``benchmarks/delay_server.py``, in its own process, as a real API would be
somewhere else), at concurrency 64 and at 2,500 (DeepSeek's per-account limit on
Flash). If nothing but the server's latency mattered, a run would take
``ceil(rows / concurrency) × latency`` (8 s at 2,500); ``wall / ideal`` says how
much the client adds on top (target at 2,500: at most 1.25).

Measured in the same run, each in its own process (so each has its own peak
memory, ``VmHWM``):

* ``run_batch``: deepseek_magic's batch (interpolation, planning, cost
  estimate, the flow, results as a DataFrame), no reply cache;
* ``httpx gather``: ``asyncio.gather`` over raw ``httpx.AsyncClient`` posts
  behind a semaphore, one pool sized to the concurrency, parsing each JSON body;
* ``aiohttp gather``: the same over one ``aiohttp.ClientSession``.

Every contender sends non-streamed requests and must get every row back
without error. A contender still running after ``--give-up`` × the ideal time
is stopped and shown as "> N×" (a plain httpx gather at 2,500 takes minutes).
Columns: wall time, ``wall / ideal``, peak resident memory of the process,
the memory above what it held before the run per row in flight, CPU time per
row, rows answered, and the server's own count of requests in flight at once.
The machine's other load shows in every contender alike; compare the rows of
one run with each other. Run::

    python benchmarks/batch_throughput.py [--rows 10000] [--concurrency 64 2500] [--latency 2] [--check]

The exit code is 0 (it is a report) unless ``--check`` is given and the batch
is above the target at the highest concurrency or lost a row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:  # so that the script also runs from a checkout that is not installed
    import deepseek_magic  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(HERE.parent))

from delay_server import raise_fd_limit  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

TARGET_RATIO = 1.25
API_KEY = "sk-bench"
MODEL = "deepseek-v4-flash"
TEMPLATE = "Write one line about item {item}"
CONTENDERS = ("run_batch", "httpx gather", "aiohttp gather")


# ------------------------------------------------------------------ contenders (run in a child process)


def _body(item: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": TEMPLATE.format(item=item)}], "stream": False}


def ours(url: str, rows: int, concurrency: int) -> int:
    """deepseek_magic's batch; returns the number of good rows."""
    from deepseek_magic import Session, Settings
    from deepseek_magic.batch import run_batch

    session = Session(settings=Settings.build(base_url=url, api_key=API_KEY, model=MODEL))
    result = run_batch(session, list(range(rows)), TEMPLATE, concurrency=concurrency, cache=None)
    errors = result["error"].dropna()
    if len(errors):
        print(f"  run_batch: {len(errors)} row error(s), e.g. {errors.iloc[0]}", file=sys.stderr)
    return rows - len(errors)


def httpx_gather(url: str, rows: int, concurrency: int) -> int:
    """The by-hand peer over httpx; returns the number of good rows."""
    import httpx

    async def gather_all() -> list[Any]:
        semaphore = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(limits=limits, timeout=600) as client:

            async def one(item: int) -> str:
                async with semaphore:
                    response = await client.post(f"{url}/chat/completions", json=_body(item), headers=headers)
                response.raise_for_status()
                content: str = response.json()["choices"][0]["message"]["content"]
                return content

            return await asyncio.gather(*(one(item) for item in range(rows)), return_exceptions=True)

    return _good(asyncio.run(gather_all()), "httpx gather")


def aiohttp_gather(url: str, rows: int, concurrency: int) -> int:
    """The by-hand peer over aiohttp; returns the number of good rows."""
    import aiohttp

    async def gather_all() -> list[Any]:
        semaphore = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(item: int) -> str:
                async with (
                    semaphore,
                    session.post(f"{url}/chat/completions", json=_body(item), headers=headers) as response,
                ):
                    response.raise_for_status()
                    body = await response.json()
                content: str = body["choices"][0]["message"]["content"]
                return content

            return await asyncio.gather(*(one(item) for item in range(rows)), return_exceptions=True)

    return _good(asyncio.run(gather_all()), "aiohttp gather")


def _good(replies: list[Any], name: str) -> int:
    failures = [reply for reply in replies if not isinstance(reply, str)]
    if failures:
        print(f"  {name}: {len(failures)} failure(s), e.g. {failures[0]!r}", file=sys.stderr)
    return len(replies) - len(failures)


RUNNERS: dict[str, Callable[[str, int, int], int]] = {
    "run_batch": ours,
    "httpx gather": httpx_gather,
    "aiohttp gather": aiohttp_gather,
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(name: str, url: str, rows: int, concurrency: int) -> None:
    """Run one contender once (after a small warm-up) and print its figures as JSON."""
    raise_fd_limit()
    import pandas  # noqa: F401  (imported up front: a one-off import is not batch throughput)

    run = RUNNERS[name]
    run(url, min(rows, 50), min(concurrency, 50))  # warm-up: imports, SSL context, first connections
    baseline = _status_kib("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    good = run(url, rows, concurrency)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    figures = {"wall": wall, "good": good, "hwm_kib": _status_kib("VmHWM"), "baseline_kib": baseline, "cpu": used}
    print(json.dumps(figures), flush=True)


# ------------------------------------------------------------------------------ the report


def measure(name: str, url: str, rows: int, concurrency: int, give_up: float) -> dict[str, Any] | None:
    """One contender in a child process; ``None`` when it was stopped after ``give_up`` seconds."""
    command = [sys.executable, __file__, "--child", name, "--url", url, "--rows", str(rows)]
    command += ["--concurrency", str(concurrency)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=give_up, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{name} failed:\n{done.stderr[-2000:]}")
    sys.stderr.write(done.stderr)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 2500])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds before the server answers")
    parser.add_argument("--give-up", type=float, default=6.0, help="stop a contender after this many × ideal")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_RATIO}x or on a lost row")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.url, args.rows, args.concurrency[0])
        return 0

    raise_fd_limit()
    server = subprocess.Popen(
        # It stops when its stdin closes (below); the lifetime is only a backstop and must outlast every contender.
        [sys.executable, str(HERE / "delay_server.py"), "--delay", str(args.latency), "--lifetime", "14400"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    results: list[tuple[int, str, float, dict[str, Any] | None]] = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the delay server did not start: {url!r}")
        for concurrency in args.concurrency:
            ideal = math.ceil(args.rows / concurrency) * args.latency
            print(
                f"{args.rows} rows, concurrency {concurrency}, {args.latency:g} s latency: "
                f"ideal = ceil({args.rows}/{concurrency}) x {args.latency:g} s = {ideal:.1f} s",
                flush=True,
            )
            for name in args.only:
                figures = measure(name, url, args.rows, concurrency, args.give_up * ideal + 60)
                results.append((concurrency, name, ideal, figures))
                _print_row(name, concurrency, ideal, figures, args.rows, args.give_up)
    finally:
        tail = server.communicate(timeout=30)[0].strip().splitlines()  # closing its stdin stops the server
    peak = json.loads(tail[-1]).get("peak_in_flight") if tail else None
    print(f"the server saw at most {peak} requests in flight at once")
    top = max(args.concurrency)
    ours_top = next((f for c, n, _, f in results if c == top and n == "run_batch"), None)
    peer_top = next((f for c, n, _, f in results if c == top and n == "aiohttp gather"), None)
    ideal_top = math.ceil(args.rows / top) * args.latency
    if ours_top is None:
        print("run_batch did not finish at the highest concurrency")
        return 1 if args.check else 0
    ratio = ours_top["wall"] / ideal_top
    if peer_top is not None:
        print(f"at concurrency {top}: run_batch / aiohttp gather = {ours_top['wall'] / peer_top['wall']:.2f}x")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target at concurrency {top}: wall/ideal <= {TARGET_RATIO} -> {verdict}")
    return 1 if args.check and (ratio > TARGET_RATIO or ours_top["good"] != args.rows) else 0


def _print_row(
    name: str, concurrency: int, ideal: float, figures: dict[str, Any] | None, rows: int, give_up: float
) -> None:
    if figures is None:
        print(f"  {name:15} stopped after {give_up:g}x the ideal time (> {give_up:g}x)", flush=True)
        return
    wall = figures["wall"]
    per_flight = (figures["hwm_kib"] - figures["baseline_kib"]) / min(concurrency, rows)
    print(
        f"  {name:15} wall {wall:7.2f} s  wall/ideal {wall / ideal:5.2f}x  peak {figures['hwm_kib'] / 1024:6.1f} MiB "
        f"({per_flight:5.1f} KiB per row in flight)  cpu {figures['cpu'] / rows * 1e6:5.0f} µs/row  "
        f"rows ok {figures['good']}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
