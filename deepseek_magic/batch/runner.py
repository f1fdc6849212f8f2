"""The batch runner: one prompt template over the rows of a table, answers back as a DataFrame.

How it runs: every row's requests go out on **one** event loop that lives in a
daemon thread (:class:`LoopThread`) over one keep-alive pool (:mod:`~deepseek_magic.client.h1`); the
calling thread (the kernel's main thread) only waits on a
``concurrent.futures.Future`` in short slices, so the kernel's Interrupt
lands there as ``KeyboardInterrupt`` and nothing patches the kernel's own
loop (no nest-asyncio; DESIGN.md "Async"). Progress is reported from the
calling thread too, which is where widget updates belong.

Planning while sending: without a reply cache to look in and without a cost
threshold or budget to check first, the first ``concurrency`` rows are planned
and sent, and the calling thread plans the rest once those requests are out
(:func:`_plan_while_sending`); the preview shown covers every row all the same.

What a row is: the template interpolated with the row's columns (plus an
optional namespace for other names) by :func:`~deepseek_magic.features.interpolation.interpolate`,
planned by an :class:`~deepseek_magic.conversation.exchange.Exchange` so JSON parsing,
validation and the one retry are exactly those of a single ask. Rows are
planned on a *scratch* :class:`~deepseek_magic.conversation.session.Session` that shares the
caller's settings and prices but has no turns, and ``Exchange.finish()`` is
never called: rows neither see the conversation's history nor become turns
in it (a thousand rows in ``%deepseek history`` would help nobody). The system
prompt in force for the conversation still applies, unless ``system=`` says
otherwise.

Failure model:

* a row's own failure (HTTP 400, invalid JSON after the retry, a lost
  stream, a prompt that could not be interpolated) is recorded in its
  ``error`` column, never raised;
* 429 (too many requests at once) is not a row failure but a signal: the
  concurrency limit halves (AIMD: at most once per round of requests sent
  under the old limit), the row waits ``Retry-After`` (or a short backoff) and
  is sent again; after :data:`MAX_RATE_LIMITED` refusals it is recorded;
* 5xx and connection failures are retried with the client's backoff, up to
  ``max_retries``; the HTTP client itself is told not to retry, so every
  pause is decided here, where the limiter can see it;
* 401/402 and configuration errors stop the batch: the remaining rows get the
  same error without being sent (a wrong key would fail every one of them).

Interrupt and resume: finished rows are kept on the session
(``session.batch_state[(template, fingerprint)]``, the fingerprint covering
every row's prompt and one whole request: :mod:`.planner`) and ``KeyboardInterrupt`` is re-raised; the
same call again sends only the rows that had not finished, with or without the
reply cache. Rows that ended in an error are sent again on a re-run.

Delivery: rows are sent without streaming unless ``stream=True`` is passed.
Nobody watches a row's tokens, and one JSON body costs about a third of the
client CPU of a reply's ~200 SSE events, which is what limits a loop driving 64
requests at once (``benchmarks/batch_throughput.py``). Without streaming the
server is silent until the whole answer is ready, so such rows get a read
timeout of at least :data:`NON_STREAM_READ_TIMEOUT`. The cache key ignores the
delivery, so streamed cells and batch rows share entries. Requests go out
through :class:`~deepseek_magic.client.pooled.PooledChatClient` (the same flow
performed over the lean HTTP/1.1 pool of :mod:`~deepseek_magic.client.h1`): one
keep-alive pool sized to the concurrency, which holds DeepSeek's 2,500 requests in flight where httpx's pool does work
proportional to connections × waiting requests on every event
(encode/httpcore#1035; ``benchmarks/batch_throughput.py``).

Cost: before anything is sent the cost is estimated from the price table,
pricing every prompt as uncached at its exact token count (DeepSeek's V4
tokenizer, :class:`~deepseek_magic.features.tokens.BatchCounter`; about 3
characters per token if the tokenizer is not installed) and every answer at
``max_tokens`` (:data:`~deepseek_magic.client.estimate.DEFAULT_OUTPUT_TOKENS`
when unset; a JSON retry is not foreseen), by the same estimator as the
session's ``max_cost``. Above ``confirm_above`` the batch stops with
:class:`BatchNeedsConfirmation` unless ``confirmed=True``. In the result,
``cost`` is what this run paid for the row: ``0.0`` for a reply from the
cache, whose token counts are still shown.

Scale-out: ``Session.batch`` over a Dask DataFrame runs this per partition
(:mod:`deepseek_magic.conversation.dask_batch`); the partitions then share one
cap and one 429 pause through a :class:`~deepseek_magic.batch.gate.SharedGate`
(``gate=``), and dask is imported only there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import httpx

from deepseek_magic.batch.collector import collect_now, collector_paused, settle_planned
from deepseek_magic.batch.gate import SharedGate, now
from deepseek_magic.batch.limiter import AdaptiveLimiter
from deepseek_magic.batch.loop import shared_loop
from deepseek_magic.batch.planner import Job, RowPlanner, one_line
from deepseek_magic.batch.results import (
    BatchNeedsConfirmation,
    BatchPreview,
    ProgressArg,
    RowResult,
    _frame,
)
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.client.estimate import estimate_cost
from deepseek_magic.client.pooled import PooledChatClient
from deepseek_magic.client.retry import RETRYABLE_STATUS, RetryPolicy
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BudgetExceeded,
    ConfigError,
    ConnectionLost,
    DeepSeekError,
    InsufficientBalanceError,
    RateLimitError,
    StreamInterrupted,
)
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.core.records import saved_reply
from deepseek_magic.features.tokens import EXACT_CHARS, SHOWN_ONLY_CHARS, BatchCounter, thinking_on
from deepseek_magic.providers import get_provider

if TYPE_CHECKING:
    import pandas as pd

    from deepseek_magic.conversation.session import Session

__all__ = ["DEFAULT_CONCURRENCY", "preview_batch", "run_batch"]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 16
#: 429 answers one row may get before it is recorded as an error instead of waiting again.
MAX_RATE_LIMITED = 20
#: How long the calling thread sleeps between looks at the batch (progress refresh, interrupt latency).
POLL_INTERVAL = 0.1
#: Floor for the read timeout of non-streamed rows: DeepSeek closes a request that has not started
#: inference after 10 minutes, and sends only blank lines until then.
NON_STREAM_READ_TIMEOUT = 600.0
#: Workers started per turn of the event loop. Started all at once, 2,500 workers open 2,500 connections before
#: the loop sees the first connect complete, so no request is written for ~0.6 s; in groups, the first requests go
#: out while later connections are still being opened (benchmarks/batch_throughput.py: ~0.03× of the ideal).
START_GROUP = 128
#: How often the loop looks whether the first requests are written; how long without a new one means the others
#: wait on the network; how long it waits for a first one at most. Then the calling thread plans the rest of the
#: rows (:func:`_plan_while_sending`).
FIRST_SENT_POLL, FIRST_SENT_QUIET, FIRST_SENT_LONGEST = 0.005, 0.05, 1.0
#: Rows the calling thread plans between two hand-overs to the loop.
FEED_CHUNK = 256
#: Seconds between looks at a shared gate (slots to take or give back, a pause another partition published).
GATE_INTERVAL = 0.2
#: Row values for list input: ``{item}`` and ``{value}`` both name the element.
SCALAR_NAMES = ("item", "value")


@dataclass
class _Tally:
    """Counters the calling thread reads for progress while the loop thread writes them."""

    total: int
    done: int = 0
    errors: int = 0
    tokens: int = 0
    cost: float = 0.0
    sent: int = 0
    rate_limited: int = 0
    #: Everything billed so far (rows that failed after a billed answer included); goes to the session.
    usage: Usage = field(default_factory=lambda: Usage(cost=0.0))


class _Batch:
    """The rows of one ``run_batch`` call and the code that drives them (sync part and async part)."""

    def __init__(
        self,
        results: list[RowResult | None],
        *,
        cache: ReplyCache | None,
        retry_settings: Settings,
        session: Session,
        json_mode: bool,
        concurrency: int,
        planner: RowPlanner,
        gate: SharedGate | None = None,
    ) -> None:
        self.planner = planner
        self.results = results
        self.cache = cache
        self.retry_settings = retry_settings
        self.retry_policy = RetryPolicy.of(retry_settings)
        self.prices = session.prices
        self.json_mode = json_mode
        self.concurrency = concurrency
        self.tally = _Tally(len(results))
        self.limiter: AdaptiveLimiter | None = None
        self.fatal: str | None = None
        self.finished = threading.Event()
        #: A cap and a pause shared with the batch's other partitions; slots of it held now; its pause.
        self.gate = gate
        self.held = 0
        self.pause_until = 0.0
        #: Rows to send, fed by the calling thread while the first ones are out (see :meth:`feed`).
        self.queue: deque[Job] = deque()
        #: Rows the calling thread has still to plan and feed; workers wait for them instead of ending.
        self.unplanned = 0
        self._more: asyncio.Event | None = None
        #: Set once the first requests are written (or the run ended): the calling thread may plan the rest.
        self.first_sent = threading.Event()
        #: Set when every row has finished without the run failing (its connections may still be closing).
        self.rows_done = threading.Event()

    # ------------------------------------------------------------- row logic

    def replay_cached(self, job: Job) -> None:
        """Answer the row's requests from the cache for as long as the cache has them."""
        while self.cache is not None and job.request is not None and job.error is None:
            hit = self.cache.get(job.key)
            if hit is None:
                return
            job.hits += 1
            self.accept(job, hit, cached=True)

    def accept(self, job: Job, reply: Reply, *, cached: bool) -> None:
        assert job.exchange is not None and job.request is not None
        if not cached:
            reply.usage = self.bill(job, reply.usage)  # priced once: the exchange keeps a cost already set
            if self.cache is not None:
                job.to_store.append((job.key, saved_reply(reply.to_dict())))
        job.exchange.accept(reply)
        self.planner.next_request(job)

    def bill(self, job: Job, usage: Usage | None) -> Usage | None:
        """Count a billed answer for the row (a finished one, or one that failed after the server answered).

        Returns ``usage`` with its cost filled in (``None`` stays ``None``).
        """
        assert job.request is not None
        settings = job.request.settings
        priced = self.prices.priced(settings.provider, settings.model, usage if usage is not None else Usage())
        job.billed = priced if job.billed is None else job.billed + priced
        return priced if usage is not None else None

    def finish(self, job: Job) -> None:
        """Record the row's result (and cache its replies if it succeeded)."""
        exchange = job.exchange
        reply = exchange.reply if exchange is not None else None
        error = job.error
        if error is None and exchange is not None and exchange.failure is not None:
            error = one_line(str(exchange.failure))
        if error is None and reply is not None and reply.reasoning_exhausted:
            # Not an answer: the row is an error and its reply is never cached (same rule as a cell).
            error = "max_tokens reached while reasoning: no answer was written (raise max_tokens or lower the effort)"
        if error is None and self.cache is not None:
            for key, stored in job.to_store:
                self.cache.put(key, stored)
        job.to_store.clear()
        value: Any = None
        if reply is not None and error is None:
            value = reply.data if self.json_mode else reply.content
        billed = job.billed if job.billed is not None else Usage(cost=0.0)
        # A row that failed after a billed answer (a blank, a broken JSON body) shows what it was billed.
        usage = reply.usage if reply is not None and reply.usage is not None else billed
        result = RowResult(
            value=value,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=billed.cost,
            cached=job.sent == 0 and job.hits > 0,
            error=error,
        )
        self.results[job.position] = result
        tally = self.tally
        tally.done += 1
        collect_now(tally.done, tally.total)  # the automatic collector is paused while the batch runs (see .collector)
        tally.errors += error is not None
        tally.tokens += billed.total_tokens
        tally.cost += billed.cost or 0.0
        if job.billed is not None:
            tally.usage = tally.usage + job.billed
        job.exchange = None  # the messages are no longer needed; a big batch should not hold them all
        job.request = None

    # ------------------------------------------------------------- async part

    async def run(self, first: list[Job], total: int) -> None:
        """Send ``first`` and the rows :meth:`feed` adds, ``total`` in all, with at most ``concurrency`` requests
        in flight (and within a shared gate's slots)."""
        gate = self.gate
        try:
            limiter = self.limiter = AdaptiveLimiter(self.concurrency)
            self.queue.extend(first)
            self.unplanned = total - len(first)
            self._more = asyncio.Event()
            count = min(self.concurrency, total)
            if gate is not None:  # at least one slot of the shared cap before anything is sent
                self.held = await _take_first(gate, count)
                limiter.set_cap(self.held)
            async with PooledChatClient(connections=count, verify=_shared_ssl_context()) as client:
                workers: list[asyncio.Task[None]] = []
                try:  # started inside the try: a cancel while starting them still stops the ones already running
                    for start in range(0, count, START_GROUP):
                        group = min(START_GROUP, count - start)
                        workers += [asyncio.create_task(self._worker(client)) for _ in range(group)]
                        await asyncio.sleep(0)  # the loop sees these connects complete and writes their requests
                    if gate is not None:
                        workers.append(asyncio.create_task(self._keep_slots(gate, count, workers[:])))
                    workers.append(asyncio.create_task(self._announce_first_sent(client, min(count, len(first)))))
                    await asyncio.gather(*workers)
                    self._give_back_slots()  # before the caller hears the rows are done
                    self.rows_done.set()
                finally:
                    for worker in workers:
                        worker.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
        finally:
            self._give_back_slots()  # even when cancelled
            self.first_sent.set()
            self.finished.set()

    def _give_back_slots(self) -> None:
        """Return the shared cap's slots this run holds (a blocking call, once, at the end)."""
        if self.gate is not None and self.held:
            self.gate.give(self.held)
            self.held = 0

    def feed(self, jobs: list[Job]) -> None:
        """Add planned rows to the queue (on the loop thread: through ``call_soon_threadsafe``) and wake the
        workers waiting for them."""
        self.queue.extend(jobs)
        self.unplanned -= len(jobs)
        if self._more is not None:
            self._more.set()
            self._more = asyncio.Event()  # the waiters hold the one just set

    async def _announce_first_sent(self, client: PooledChatClient, count: int) -> None:
        """Set :attr:`first_sent` once ``count`` requests are written, or once some are and no more were for
        :data:`FIRST_SENT_QUIET` (the rest wait on the network: connects to a distant server), or after
        :data:`FIRST_SENT_LONGEST` with none (nothing answers yet): the calling thread then plans the rest."""
        started = written = now()
        seen = 0
        while client.requests_sent < count:
            await asyncio.sleep(FIRST_SENT_POLL)
            moment, sent = now(), client.requests_sent
            if sent != seen:
                seen, written = sent, moment
            elif (sent and moment - written >= FIRST_SENT_QUIET) or moment - started >= FIRST_SENT_LONGEST:
                break
        self.first_sent.set()

    async def _keep_slots(self, gate: SharedGate, count: int, workers: list[Any]) -> None:
        """Hold as many of the shared cap's slots as there are rows to send (up to ``count``); give back the rest.

        Also picks up a pause another partition published after a 429. Slots
        are given back only above what is in flight, so the requests this
        process sends never exceed the slots it holds.
        """
        limiter = self.limiter
        assert limiter is not None
        loop = asyncio.get_running_loop()
        while not all(worker.done() for worker in workers):
            await asyncio.sleep(GATE_INTERVAL)
            self.pause_until = max(self.pause_until, await loop.run_in_executor(None, gate.paused_until))
            wanted = max(1, min(count, len(self.queue) + self.unplanned + limiter.in_flight, limiter.target))
            if self.held < wanted:
                self.held += await loop.run_in_executor(None, gate.take, wanted - self.held, 0)
                limiter.set_cap(self.held)
            else:
                keep = max(wanted, limiter.in_flight, 1)
                if self.held > keep:
                    surplus = self.held - keep
                    self.held = keep
                    limiter.set_cap(keep)  # before the await: no worker can start on a slot being given back
                    await loop.run_in_executor(None, gate.give, surplus)

    async def _worker(self, client: PooledChatClient) -> None:
        queue = self.queue
        while True:
            if not queue:
                if self.unplanned <= 0 or self._more is None:
                    return
                await self._more.wait()  # the calling thread is still planning rows
                continue
            job = queue.popleft()
            try:
                await self._drive(job, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must cost one row, not the batch
                job.error = one_line(f"{type(exc).__name__}: {exc}")
            self.finish(job)

    async def _drive(self, job: Job, client: PooledChatClient) -> None:
        limiter = self.limiter
        assert limiter is not None
        while job.request is not None and job.error is None:
            self.replay_cached(job)
            if job.request is None:
                return
            if self.fatal is not None:
                job.error = self.fatal
                return
            if self.gate is not None and self.pause_until > now():  # another partition was told to wait
                await asyncio.sleep(self.pause_until - now())
            ticket = await limiter.acquire()
            outcome: Literal["ok", "rate_limited", "other"] = "other"
            try:
                job.sent += 1
                self.tally.sent += 1
                reply = await client.chat(job.request)
                outcome = "ok"
            except RateLimitError as exc:
                outcome = "rate_limited"
                pause = self._rate_limit_pause(job, exc)
            except (APIConnectionError, APIStatusError) as exc:
                pause = self._failure_pause(job, exc)
            except DeepSeekError as exc:
                pause = None
                job.error = one_line(str(exc))
                if isinstance(exc, StreamInterrupted) and exc.partial is not None and exc.partial.usage is not None:
                    self.bill(job, exc.partial.usage)  # a blank or broken answer the server still billed
                if isinstance(exc, ConfigError):
                    self.fatal = job.error
            finally:
                limiter.release(ticket, outcome)
            if outcome == "ok":
                self.accept(job, reply, cached=False)
            elif pause is not None:
                await asyncio.sleep(pause)

    def _rate_limit_pause(self, job: Job, exc: RateLimitError) -> float | None:
        job.rate_limited += 1
        self.tally.rate_limited += 1
        if job.rate_limited > MAX_RATE_LIMITED:
            job.error = one_line(f"{exc} (refused {job.rate_limited} times; giving up on this row)")
            return None
        if exc.retry_after is not None:
            if not self.retry_policy.honours(exc.retry_after):
                job.error = one_line(f"{exc} (asked to wait {exc.retry_after:g} s; not waiting)")
                return None
            return self._share_pause(exc.retry_after)
        # Not bounded by max_retries (MAX_RATE_LIMITED is); shared: a 429 speaks of the account, not of this row.
        return self._share_pause(self.retry_policy.backoff(job.rate_limited - 1))

    def _share_pause(self, seconds: float) -> float:
        """Tell the other partitions to wait out a server's ``Retry-After`` too (it is the account's, not ours)."""
        gate = self.gate
        if gate is not None:
            until = now() + seconds
            self.pause_until = max(self.pause_until, until)
            asyncio.get_running_loop().run_in_executor(None, gate.pause, until)
        return seconds

    def _failure_pause(self, job: Job, exc: DeepSeekError) -> float | None:
        # A connection closed after the request went out is not sent again: it may have been billed.
        retryable = (isinstance(exc, APIConnectionError) and not isinstance(exc, ConnectionLost)) or (
            isinstance(exc, APIStatusError) and exc.status_code in RETRYABLE_STATUS
        )
        if retryable:
            retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
            delay = self.retry_policy.delay(job.failures, retry_after)
            job.failures += 1
            if delay is not None:
                return delay
        job.error = one_line(str(exc))
        if isinstance(exc, (AuthenticationError, InsufficientBalanceError)):
            self.fatal = job.error
        return None


async def _take_first(gate: SharedGate, wanted: int) -> int:
    """Wait (in a helper thread, a second at a time) until ``gate`` grants at least one slot; up to ``wanted``.

    Cancelled meanwhile (an interrupt), a grant that still arrives is given
    straight back, so no slot of the shared cap is lost.
    """
    loop = asyncio.get_running_loop()
    while True:
        grant = loop.run_in_executor(None, gate.take, wanted, 1.0)
        try:
            taken = await asyncio.shield(grant)
        except asyncio.CancelledError:
            grant.add_done_callback(lambda done: _give_back(gate, done))
            raise
        if taken:
            return taken


def _give_back(gate: SharedGate, grant: asyncio.Future[int]) -> None:
    if not grant.cancelled() and grant.exception() is None and grant.result():
        gate.give(grant.result())


_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """One SSL context for every batch (building one costs ~30 ms): httpx's, so rows trust what cells trust."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


# ------------------------------------------------------------------------- rows


def _rows(rows: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``(index, records)`` for a DataFrame, a Series or a list of dicts/scalars."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a test dependency
        raise ConfigError("batches need pandas: pip install pandas") from None
    if isinstance(rows, pd.DataFrame):
        names = [str(column) for column in rows.columns]
        records = [dict(zip(names, values, strict=True)) for values in rows.itertuples(index=False, name=None)]
        return rows.index, records
    if isinstance(rows, pd.Series):
        extra = (str(rows.name),) if isinstance(rows.name, str) and rows.name else ()
        return rows.index, [dict.fromkeys((*SCALAR_NAMES, *extra), value) for value in rows.tolist()]
    if type(rows).__module__.startswith("dask"):
        raise ConfigError("this is a Dask collection: use Session.batch, which returns a lazy Dask DataFrame")
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise ConfigError(f"a batch runs over a DataFrame or a list, not {type(rows).__name__}")
    records = []
    for item in rows:
        if isinstance(item, Mapping):
            records.append({str(key): value for key, value in item.items()})
        else:
            records.append(dict.fromkeys(SCALAR_NAMES, item))
    return pd.RangeIndex(len(records)), records


def _batch_states(session: Session) -> dict[tuple[str, str], dict[int, RowResult]]:
    """``session.batch_state``: finished rows of interrupted batches, by (template, fingerprint)."""
    return cast(dict[tuple[str, str], dict[int, RowResult]], vars(session).setdefault("batch_state", {}))


def _estimate(
    session: Session, settings: Settings, prompts: list[list[dict[str, Any]]], *, gated: bool = True
) -> float | None:
    """The upper cost estimate for sending ``prompts`` (the session budget's estimator, exact prompt counts).

    ``gated``: a confirmation threshold or a budget decides on the figure, so up to
    :data:`~deepseek_magic.features.tokens.EXACT_CHARS` of text are tokenized exactly; otherwise the figure is
    only shown and :data:`~deepseek_magic.features.tokens.SHOWN_ONLY_CHARS` are, the rest extrapolated.
    """
    exact = EXACT_CHARS if gated else SHOWN_ONLY_CHARS
    counter = BatchCounter(thinking=thinking_on(settings), exact_chars=exact)
    return estimate_cost(session.prices, settings, prompts, count=counter)


def _plan_while_sending(batch: _Batch, rest: list[Job], loop: asyncio.AbstractEventLoop) -> list[list[dict[str, Any]]]:
    """Plan ``rest`` once the first requests are out, handing them to the loop in chunks as they are ready;
    the first request's messages of every row that can be sent (for the cost estimate).

    The calling thread and the loop share one interpreter lock, so planning
    while the first requests are still being written would only slow those
    down; once they are out the loop waits on the server and the planning is
    free. A worker that runs out of rows meanwhile waits for the next chunk; a
    row that failed while planned is finished by the worker that takes it.
    """
    prompts: list[list[dict[str, Any]]] = []
    while not batch.first_sent.wait(POLL_INTERVAL):
        pass  # short waits: the kernel's Interrupt lands here as KeyboardInterrupt (run_batch cancels the run)
    for start in range(0, len(rest), FEED_CHUNK):
        chunk = rest[start : start + FEED_CHUNK]
        for job in chunk:
            batch.planner.plan(job)
            if job.request is not None:
                prompts.append(job.request.messages)
        loop.call_soon_threadsafe(batch.feed, chunk)
    settle_planned()
    return prompts


def _report(progress: ProgressArg, tally: _Tally) -> None:
    if progress is None:
        return
    update = getattr(progress, "update", None)
    call = update if callable(update) else progress
    assert callable(call)
    call(tally.done, tally.total, tally.errors, tally.tokens, tally.cost)


@collector_paused()  # the automatic garbage collector is paused for every call (see .collector)
def run_batch(
    session: Session,
    rows: Any,
    template: str,
    *,
    json: bool = False,
    schema: Any = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    cache: ReplyCache | None = None,
    progress: ProgressArg = None,
    confirm_above: float | None = None,
    confirmed: bool = False,
    namespace: Mapping[str, Any] | None = None,
    gate: SharedGate | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Ask ``template`` once per row and return the answers as a DataFrame in input order.

    ``rows`` is a DataFrame (columns are the template's names), a Series or a
    list (of dicts, or of scalars named ``{item}``/``{value}``); ``namespace``
    supplies other names (the notebook's variables). ``options`` are Settings
    fields (``model``, ``temperature``, ``max_tokens``, ``stream``, …) and
    ``system``. The frame has the input's index and the columns ``reply`` (or,
    in JSON mode, the fields of each object, or ``data`` when replies are not
    objects), then :data:`USAGE_COLUMNS`; ``frame.attrs["batch"]`` holds the
    run's figures. ``gate`` is a cap shared with other parts of the same batch
    running elsewhere (:mod:`.gate`; Dask partitions). See the module docstring for errors, 429s, interrupts,
    resuming and cost.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    started = time.monotonic()
    index, records = _rows(rows)
    json_mode = bool(json or schema is not None)
    system = options.pop("system", None)
    if system is None:
        system = session.sticky_system(None)
    max_retries = options.pop("max_retries", None)
    if not options.pop("stream", False):
        # Non-stream unless asked: nobody watches a row's tokens, and one JSON body costs a third of the CPU
        # of ~200 SSE events (benchmarks/batch_throughput.py). Silence is then normal until the whole answer
        # is ready, so the read timeout has to cover a whole generation, not a pause between tokens.
        options["stream"] = False
        options.setdefault("read_timeout", max(session.settings.read_timeout, NON_STREAM_READ_TIMEOUT))
    else:
        options["stream"] = True
    retry_settings = session.settings.merged(max_retries=max_retries, **options)
    # The HTTP client must not retry on its own: the batch decides every pause, where the limiter sees 429s.
    row_settings = retry_settings.merged(max_retries=0, json_mode=True if json_mode else None)
    if not row_settings.resolved_api_key():
        provider = get_provider(row_settings.provider)
        raise ConfigError(
            f"no API key for {provider.display_name}: set {row_settings.key_variable} or enter it in %deepseek settings"
        )
    # The session's own class: this module sits below the session layer and never imports it.
    scratch = type(session)(f"{session.name}:batch", settings=row_settings, prices=session.prices)
    names: Mapping[str, Any] = namespace if namespace is not None else {}

    planner = RowPlanner(scratch, system=system, schema=schema, keyed=cache is not None)
    jobs = planner.prompts(records, template, names)
    results: list[RowResult | None] = [None] * len(jobs)
    batch = _Batch(
        results,
        cache=cache,
        retry_settings=retry_settings,
        session=session,
        json_mode=json_mode,
        concurrency=concurrency,
        planner=planner,
        gate=gate,
    )
    state_key = (template, planner.fingerprint(jobs))
    states = _batch_states(session)
    kept = states.get(state_key, {})
    gated = (confirm_above is not None and not confirmed) or session.max_cost is not None
    # Without a reply cache to look in or a cost to check first, the first rows go out before the rest is planned.
    plan_while_sending = cache is None and not gated
    future: concurrent.futures.Future[None] | None = None
    try:
        to_plan: list[Job] = []
        failed = 0
        for job in jobs:
            if job.position in kept:
                results[job.position] = kept[job.position]
                batch.tally.done += 1
                job.exchange = job.request = None
            elif job.error is not None:
                failed += 1
                batch.finish(job)
            else:
                to_plan.append(job)
        first, rest = (to_plan[:concurrency], to_plan[concurrency:]) if plan_while_sending else (to_plan, [])
        sendable: list[Job] = []
        for job in first:
            planner.plan(job)
            batch.replay_cached(job)
            if job.request is None:
                failed += job.error is not None
                batch.finish(job)  # failed while planned, or answered from the cache
            else:
                sendable.append(job)
        cached = sum(1 for r in results if r is not None and r.cached)
        # Read now: once a row is sent, the loop thread moves its request on.
        prompts = [job.request.messages for job in sendable if job.request is not None]
        if plan_while_sending and (sendable or rest):
            runner = shared_loop()
            future = runner.submit(batch.run(sendable, len(sendable) + len(rest)))
            planned = _plan_while_sending(batch, rest, runner.loop) if rest else []
            failed += len(rest) - len(planned)
            prompts += planned
        estimate = _estimate(session, row_settings, prompts, gated=gated)
        preview = BatchPreview(
            total=len(jobs),
            to_send=len(prompts),
            cached=cached,
            resumed=len(kept),
            failed=failed,
            estimate=estimate,
            concurrency=concurrency,
        )
        _check_cost(session, preview, confirm_above, confirmed)  # before anything is sent: ``gated`` runs only
        start = getattr(progress, "start", None)
        if callable(start):
            start(preview)
        _report(progress, batch.tally)
        if future is None and sendable:
            future = shared_loop().submit(batch.run(sendable, len(sendable)))
        if future is not None:
            _wait(future, batch, progress)
        _report(progress, batch.tally)
    except (BatchNeedsConfirmation, BudgetExceeded):
        raise  # refused before sending: nothing to resume
    except BaseException:
        if future is not None:  # an interrupt anywhere once rows are out (planning, the preview, the wait)
            future.cancel()
            batch.finished.wait(timeout=5.0)  # in-flight requests are closed; finished rows are in ``results``
        finished = {i: r for i, r in enumerate(results) if r is not None and r.error is None}
        if finished:
            states[state_key] = finished
        raise
    finally:
        # What this run paid is the session's spend too (per session and in %deepseek usage), interrupted or not.
        session.add_batch_usage(batch.tally.usage)
        close = getattr(progress, "close", None)
        if callable(close):
            close()
    states.pop(state_key, None)
    frame = _frame([r if r is not None else RowResult(error="not run") for r in results], index, json_mode)
    limiter = batch.limiter
    frame.attrs["batch"] = {
        "rows": len(jobs),
        "sent": batch.tally.sent,
        "cached": sum(1 for r in results if r is not None and r.cached),
        "resumed": len(kept),
        "errors": batch.tally.errors,
        "rate_limited": batch.tally.rate_limited,
        "concurrency": concurrency,
        "lowest_concurrency": limiter.lowest if limiter is not None else concurrency,
        "final_concurrency": limiter.limit if limiter is not None else concurrency,
        "estimate": estimate,
        "cost": batch.tally.cost,
        "tokens": batch.tally.tokens,
        "wall": time.monotonic() - started,
    }
    return frame


def _check_cost(session: Session, preview: BatchPreview, confirm_above: float | None, confirmed: bool) -> None:
    """Refuse before sending when the estimate is above the threshold (or the session's budget)."""
    if not preview.to_send:
        return
    estimate = preview.estimate
    if confirm_above is not None and not confirmed and (estimate is None or estimate > confirm_above):
        figure = "an unknown cost (no price for this model)" if estimate is None else f"up to ~${estimate:,.4f}"
        raise BatchNeedsConfirmation(
            f"this batch would send {preview.to_send:,} requests at {figure}, above the ${confirm_above:,.4f} "
            "confirmation threshold; run it again with confirmed=True to go ahead",
            preview,
        )
    if session.max_cost is not None:
        if estimate is None:
            raise BudgetExceeded("max_cost is set but no price is known for this model; add one with prices.override")
        if session.cost + estimate > session.max_cost:
            raise BudgetExceeded(
                f"this batch could cost up to ${estimate:,.4f}; with ${session.cost:,.4f} spent it would cross "
                f"max_cost ${session.max_cost:,.4f}"
            )


def _wait(future: concurrent.futures.Future[None], batch: _Batch, progress: ProgressArg) -> None:
    """Wait in short slices (so KeyboardInterrupt is honoured; :func:`run_batch` then cancels), reporting progress.

    Returns as soon as every row has finished: the loop then closes the
    batch's connections (some 50 µs each, a tenth of a second at 2,500) while
    the calling thread builds the frame. A run that failed is raised.
    """
    while not batch.rows_done.wait(POLL_INTERVAL):
        if future.done():
            future.result()
            return
        _report(progress, batch.tally)


def preview_batch(session: Session, rows: Any, template: str, **options: Any) -> BatchPreview:
    """What :func:`run_batch` would send and its upper cost estimate, sending nothing.

    The same planning as a run (interpolation, the reply cache, resumed rows),
    stopped where a run would ask for confirmation: a Dask batch previews every
    partition first and checks the budget on their sum.
    """
    options.pop("progress", None)
    options.pop("confirmed", None)
    try:
        frame = run_batch(session, rows, template, confirm_above=-1.0, confirmed=False, **options)
    except BatchNeedsConfirmation as exc:
        return exc.preview
    # Nothing to send: every row was answered from the cache, kept from a run before, or failed before sending.
    return BatchPreview(
        total=len(frame),
        to_send=0,
        cached=int(frame["cached"].sum()),
        resumed=int(frame.attrs["batch"]["resumed"]),
        failed=int(frame["error"].notna().sum()),
        estimate=0.0,
        concurrency=int(options.get("concurrency", DEFAULT_CONCURRENCY)),
    )
