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
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .client import AsyncChatClient, ChatClient, EventCallback
from .config import Settings, default_settings
from .errors import BudgetExceeded, ConfigError, DeepSeekError, ReplyError, StreamInterrupted
from .estimate import estimate_cost
from .events import Accumulator, Reply, Usage
from .files import FileKindError, open_regular, write_atomically
from .pricing import PRICES, PriceTable
from .providers import ChatRequest, HttpCall
from .textcheck import surrogate_problem
from .tools import DEFAULT_ROUNDS, ToolBox, ToolResult

if TYPE_CHECKING:
    from .cache import ReplyCache

TurnStatus = Literal["complete", "partial", "interrupted"]
SESSION_FILE_VERSION = 1
#: Largest session file :meth:`Session.load` reads (a 400-turn, million-token session is a few megabytes).
MAX_SESSION_FILE_BYTES = 256 * 1024 * 1024
#: Largest token count or timestamp a saved file may hold; anything above is not a real figure.
MAX_SAVED_NUMBER = 10**13
#: Settings a session file carries: how to generate, not where to connect or with what key.
SAVED_SETTINGS = (
    "model",
    "thinking",
    "effort",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "json_mode",
    "user_id",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "n",
    "stream",
)


class SessionFileError(DeepSeekError):
    """A session file could not be read; nothing was loaded."""


@dataclass
class Turn:
    """One user message and the reply to it, made by one cell (``key``)."""

    key: str
    prompt: str
    reply: Reply
    system: str | None = None
    model: str = ""
    provider: str = ""
    status: TurnStatus = "complete"
    created: float = field(default_factory=time.time)
    #: Messages between the prompt and the final reply (tool-call rounds).
    intermediate: list[dict[str, Any]] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        """This turn as conversation messages."""
        return [{"role": "user", "content": self.prompt}, *self.intermediate, self.reply.to_message()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "prompt": self.prompt,
            "reply": self.reply.to_dict(),
            "system": self.system,
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "created": self.created,
            "intermediate": self.intermediate,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Turn:
        """A turn from saved data; wrong types raise ``ValueError`` (so nothing half-valid loads)."""
        if not isinstance(raw, dict):
            raise ValueError("a turn must be an object")
        status = raw.get("status", "complete")
        if status not in ("complete", "partial", "interrupted"):
            raise ValueError(f"unknown turn status {status!r}")
        for name, kinds in (
            ("key", str),
            ("prompt", str),
            ("system", (str, type(None))),
            ("model", str),
            ("provider", str),
            ("created", (int, float)),
            ("intermediate", list),
        ):
            if name in raw and not isinstance(raw[name], kinds):
                raise ValueError(f"turn field {name!r} has the wrong type ({type(raw[name]).__name__})")
        created = raw.get("created", 0.0)
        if not (math.isfinite(created) and 0 <= created <= MAX_SAVED_NUMBER):
            raise ValueError(f"turn field 'created' is not a real time ({created!r})")
        intermediate = list(raw.get("intermediate") or [])
        if not all(isinstance(message, dict) for message in intermediate):
            raise ValueError("a turn's intermediate messages must be objects")
        return cls(
            key=raw["key"],
            prompt=raw["prompt"],
            reply=Reply.from_dict(raw["reply"]),
            system=raw.get("system"),
            model=raw.get("model", ""),
            provider=raw.get("provider", ""),
            status=status,
            created=float(raw.get("created", 0.0)),
            intermediate=intermediate,
        )


RetryCallback = Callable[[str], None]
ToolCallback = Callable[[ToolResult], None]


class Exchange:
    """The requests of one ``ask`` and what to make of each reply; no I/O.

    JSON mode may take a second request: a reply that is not valid JSON (or
    fails the schema) is asked again once with the problem explained. A blank
    reply is not asked again: it is an error of its own (asking the same thing
    twice mostly buys a second blank). Usage of every attempt is added up.
    """

    def __init__(
        self,
        session: Session,
        text: str,
        *,
        key: str,
        system: str | None,
        settings: Settings,
        schema: Any = None,
        tools: list[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_rounds: int = DEFAULT_ROUNDS,
        on_tool: ToolCallback | None = None,
        prefix: str | None = None,
        strict_tools: bool = False,
    ) -> None:
        for value, where in ((text, "the prompt"), (system, "the system prompt")):
            problem = surrogate_problem(value, where) if value else None
            if problem:
                raise ConfigError(f"{problem}; nothing was sent")
        self.session = session
        self.prefix = prefix
        self.text = text
        self.key = key
        self.system = system
        self.settings = settings
        self.schema = schema
        callables = [t for t in tools or () if callable(t)]
        self.toolbox = ToolBox(callables, rounds=max_rounds) if callables else None
        schemas = [t for t in tools or () if not callable(t)]
        self.tools = [*schemas, *(self.toolbox.schemas() if self.toolbox else [])] or None
        if strict_tools and self.tools:
            self.tools = [strict(tool) for tool in self.tools]
        self.tool_choice = tool_choice
        self.on_tool = on_tool
        self.messages = self._messages()
        #: Assistant tool-call turns and tool results of this exchange, in order.
        self.intermediate: list[dict[str, Any]] = []
        self.rounds = 0
        self.tool_results: list[ToolResult] = []
        self._pending: ChatRequest | None = ChatRequest(self.messages, settings, self.tools, tool_choice)
        self._attempts = 0
        self._usage: Usage | None = None
        self.reply: Reply | None = None
        self.failure: Exception | None = None
        self.retry_reason: str | None = None

    def _messages(self) -> list[dict[str, Any]]:
        history = self.session.history_before(self.key)
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        for turn in history:
            messages.extend(turn.messages())
        messages.append({"role": "user", "content": self.text})
        if self.prefix is not None:
            # DeepSeek continues this assistant text (beta base); the reply holds only the continuation.
            messages.append({"role": "assistant", "content": self.prefix, "prefix": True})
        if self.settings.json_mode:
            from .structured import json_instruction, mentions_json

            if self.schema is not None or not mentions_json(messages):
                messages.insert(0, {"role": "system", "content": json_instruction(self.schema)})
        return messages

    @property
    def next_is_final(self) -> bool:
        """True when no further request is planned (the last reply is the answer)."""
        return self._pending is None

    def next_request(self) -> ChatRequest | None:
        """The request to send now, or ``None`` when the exchange is over."""
        request, self._pending = self._pending, None
        return request

    def accept(self, reply: Reply) -> None:
        """Take a finished reply; may schedule one more request (JSON retry, or the next tool round)."""
        if self._take(reply):
            self._run_tools(reply)

    async def aaccept(self, reply: Reply) -> None:
        """Async twin of :meth:`accept`: ``async def`` tools are awaited on the caller's loop."""
        if self._take(reply):
            assert self.toolbox is not None
            if self._open_round(reply):
                for call in reply.tool_calls:
                    self._record(await self.toolbox.arun(call))
                self._close_round()

    def _take(self, reply: Reply) -> bool:
        """Fold ``reply`` in; True when its tool calls should run now."""
        self._attempts += 1
        if reply.cached and reply.usage is not None:
            reply.usage = replace(reply.usage, cost=0.0)  # a cached answer costs nothing again
        if reply.usage is not None:
            reply.usage = self.session.prices.priced(self.settings.provider, self.settings.model, reply.usage)
        self._usage = reply.usage if self._usage is None or reply.usage is None else self._usage + reply.usage
        reply.usage = self._usage
        if self.prefix is not None and not reply.tool_calls:
            reply.content = self.prefix + reply.content  # the whole assistant text, as the user sees it
        self.reply = reply
        if self.toolbox is not None and reply.tool_calls:
            return True
        if not self.settings.json_mode:
            return False
        from .structured import StructuredOutputError, parse_json_reply, retry_message, to_python, validate

        try:
            data = parse_json_reply(reply.content)
            if self.schema is not None:
                data = validate(data, self.schema)
        except StructuredOutputError as exc:
            if self._attempts >= 2 or not reply.content.strip():
                self.failure = exc
                reply.error = str(exc)
                return False
            conversation = [*self.messages, *self.intermediate]
            self.retry_reason = f"{exc}; asking once more"
            retry = [*conversation, reply.to_message(), retry_message(exc)]
            self._pending = ChatRequest(retry, self.settings, self.tools, self.tool_choice)
            return False
        reply.data = to_python(data)
        return False

    def _run_tools(self, reply: Reply) -> None:
        """Run the calls the model asked for and schedule the next round."""
        assert self.toolbox is not None
        if self._open_round(reply):
            for call in reply.tool_calls:
                self._record(self.toolbox.run(call))
            self._close_round()

    def _open_round(self, reply: Reply) -> bool:
        assert self.toolbox is not None
        if self.rounds >= self.toolbox.rounds:
            reply.warnings.append(f"stopped after {self.rounds} tool rounds (the limit); the model wanted more")
            return False
        self.rounds += 1
        self.intermediate.append(reply.to_message())
        return True

    def _record(self, result: ToolResult) -> None:
        self.tool_results.append(result)
        self.intermediate.append({"role": "tool", "tool_call_id": result.call.id, "content": result.content})
        if self.on_tool is not None:
            self.on_tool(result)

    def _close_round(self) -> None:
        # A forced choice applies to the first round only, or the loop could never end.
        self.tool_choice = None if self.tool_choice not in (None, "none") else self.tool_choice
        conversation = [*self.messages, *self.intermediate]
        self._pending = ChatRequest(conversation, self.settings, self.tools, self.tool_choice)

    def finish(self) -> Reply:
        """Store the turn and return the reply (or raise if JSON never parsed)."""
        assert self.reply is not None
        self.session.store(self._turn(self.reply, "complete"))
        if self.failure is not None:
            raise ReplyError(
                f"{self.failure} (after one retry; the raw text is in the reply's .content)", self.reply
            ) from None
        return self.reply

    def keep_accepted(self) -> None:
        """Keep the last accepted reply when the turn stops after it (a tool running, a cancelled loop).

        That reply was billed: its turn is stored as ``interrupted`` with the
        usage of every round so far, so history and ``%deepseek usage`` show it.
        """
        if self.reply is None:
            return
        self.reply.interrupted = True
        self.reply.partial = True
        self.session.store(self._turn(self.reply, "interrupted"))

    def keep_partial(self, reply: Reply, status: TurnStatus) -> None:
        """Keep what arrived before an interrupt or a lost connection."""
        if reply.usage is not None:
            reply.usage = self.session.prices.priced(self.settings.provider, self.settings.model, reply.usage)
        if self._usage is not None:
            # Earlier rounds of this exchange (a tool loop, a JSON retry) were billed too.
            reply.usage = self._usage if reply.usage is None else self._usage + reply.usage
        self.session.store(self._turn(reply, status))

    def _turn(self, reply: Reply, status: TurnStatus) -> Turn:
        return Turn(
            key=self.key,
            prompt=self.text,
            reply=reply,
            system=self.system,
            model=reply.model or self.settings.model,
            provider=self.settings.provider,
            status=status,
            intermediate=list(self.intermediate),
        )


TURNS_OPENING = ', "turns": ['


def _read_session_file(source: Path) -> dict[str, Any]:
    """The saved document, with its turns already built.

    Files written by :meth:`Session.save` hold one turn per line, so they are
    read a line at a time: only one turn's text is in memory besides the turns
    built so far (never the whole file next to a whole parse). Any other
    layout of the same JSON is read whole.
    """
    with open_regular(source) as lines:  # never blocks on a FIFO; refuses devices and directories
        size = os.fstat(lines.fileno()).st_size
        if size > MAX_SESSION_FILE_BYTES:
            raise ValueError(f"it is {size:,} bytes, above the {MAX_SESSION_FILE_BYTES:,}-byte limit for session files")
        first = lines.readline(MAX_SESSION_FILE_BYTES)
        if first.rstrip("\n").endswith(TURNS_OPENING):
            header: dict[str, Any] = _loads(first.rstrip("\n")[: -len(TURNS_OPENING)] + "}")
            turns: list[Any] = []
            for line in lines:
                text = line.strip()
                if text == "]}":
                    break
                turns.append(Turn.from_dict(_loads(text.removeprefix(","))))
            else:
                raise ValueError("the file ends before its last turn")
            if lines.read().strip():
                raise ValueError("unexpected text after the turns")
            header["turns"] = turns
            return header
        lines.seek(0)
        raw = _loads(lines.read())
    if not isinstance(raw, dict):
        raise ValueError("a session file holds one JSON object")
    return raw


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a session file may hold")


def _loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and turns too-deep nesting into ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply to be a session file") from None


def _cache_key(request: ChatRequest) -> str:
    from .cache import cache_key

    return cache_key(request)


def strict(tool: dict[str, Any]) -> dict[str, Any]:
    """A function tool marked ``strict`` (DeepSeek beta): the server enforces its schema.

    Strict mode wants every property required and no extra properties, so the
    schema is tightened accordingly.
    """
    function = dict(tool.get("function") or {})
    parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
    parameters["required"] = list((parameters.get("properties") or {}).keys())
    parameters["additionalProperties"] = False
    function.update(strict=True, parameters=parameters)
    return {**tool, "function": function}


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
        self._async_client: AsyncChatClient | None = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None

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

        The estimate is :func:`~deepseek_magic.estimate.estimate_cost` (the same as the batch preview's).
        """
        if self.max_cost is None:
            return
        settings = request.settings
        estimate = estimate_cost(self.prices, settings, [request.messages])
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
        **options: Any,
    ) -> Exchange:
        """Plan one ask without sending anything (``--dry-run`` shows its first request)."""
        turn_key = key or uuid.uuid4().hex
        if json or schema is not None:
            options["json_mode"] = True
        settings = self.settings.merged(**options)
        settings.resolved_api_key()  # a malformed key is refused here, in one line, before any view starts
        return Exchange(
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
        )

    def batch(self, rows: Any, template: str, **options: Any) -> Any:
        """Ask ``template`` once per row (``{column}`` interpolated); a DataFrame in input order.

        Rows are not added to the conversation. Options: ``json``, ``schema``,
        ``concurrency`` (16), ``cache`` (a :class:`~deepseek_magic.cache.ReplyCache`),
        ``progress``, ``confirm_above``/``confirmed`` (a cost threshold in USD),
        ``namespace``, and Settings fields. See :func:`deepseek_magic.batch.run_batch`.
        """
        from .batch.runner import run_batch  # downward (session → features); lazy: batches pull in pandas

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
        """The session as plain data (what :meth:`save` writes)."""
        return {**self._header(), "turns": [turn.to_dict() for turn in self.turns]}

    def _header(self) -> dict[str, Any]:
        return {
            "version": SESSION_FILE_VERSION,
            "name": self.name,
            "system": self.system,
            "settings": self.settings.model_dump(include=set(SAVED_SETTINGS)),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the session as JSON, atomically (a crash leaves the old file intact).

        Turns are streamed into the file one at a time rather than built into
        one big string first, so a long session is not held twice in memory.
        Only regular files are written (through a symlink, its target is
        updated): a FIFO, device or directory at ``path`` is refused in one
        line (:mod:`.files`).
        """
        return write_atomically(path, self._json_pieces())

    def _json_pieces(self) -> Iterator[str]:
        """The file, one turn per line: still one JSON document, and :meth:`load` can read it a line at a time."""
        yield json.dumps(self._header(), ensure_ascii=False)[:-1] + TURNS_OPENING + "\n"
        for index, turn in enumerate(self.turns):
            yield ("," if index else "") + json.dumps(turn.to_dict(), ensure_ascii=False) + "\n"
        yield "]}\n"

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
            raw = _read_session_file(source)
        except FileNotFoundError:
            raise SessionFileError(f"no session file at {source}") from None
        except FileKindError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SessionFileError(f"{source} is not a readable session file: {exc}") from None
        try:
            if not isinstance(raw, dict) or raw.get("version") != SESSION_FILE_VERSION:
                raise ValueError("unknown format or version")
            if not isinstance(raw.get("turns"), list):
                raise ValueError("'turns' must be a list")
            if not isinstance(raw.get("name", "default"), str) or not isinstance(raw.get("system"), (str, type(None))):
                raise ValueError("'name' and 'system' must be text")
            turns = [item if isinstance(item, Turn) else Turn.from_dict(item) for item in raw["turns"]]
            base = settings if settings is not None else Settings.from_env()
            saved = {k: v for k, v in dict(raw.get("settings") or {}).items() if k in SAVED_SETTINGS}
            session = cls(str(raw.get("name", "default")), settings=base.merged(**saved), client=client)
        except DeepSeekError as exc:
            raise SessionFileError(f"{source} has settings that are not valid: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SessionFileError(f"{source} is not a valid session file: {exc}") from None
        session.system = raw.get("system")
        session.turns = turns
        return session
