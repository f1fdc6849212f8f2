"""One ``ask``: the requests it makes and what to make of each reply, without I/O.

Why apart from the session: the sync and async paths (``ask``/``aask``) and
the batch runner drive the same exchange, each with its own loop, so what to
send next (a JSON-mode retry, a tool round) is decided in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.turns import Turn, TurnStatus
from deepseek_magic.core.errors import ConfigError, ReplyError
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.core.textcheck import surrogate_problem
from deepseek_magic.features.tools import DEFAULT_ROUNDS, ToolBox, ToolResult
from deepseek_magic.providers import ChatRequest

if TYPE_CHECKING:
    from deepseek_magic.conversation.session import Session

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
            from deepseek_magic.features.structured import json_instruction, mentions_json

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
        from deepseek_magic.features.structured import (
            StructuredOutputError,
            parse_json_reply,
            retry_message,
            to_python,
            validate,
        )

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
