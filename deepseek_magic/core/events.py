"""The normalized event stream, and the accumulator that turns it into a Reply.

Every provider turns its wire chunks into these events; the session, the
features and the views only ever see these. Keeping this vocabulary small and
provider-neutral is what makes "a new provider is one module" true.

Events carry the ``choice`` index so that providers returning several choices
(Evolink's ``n``) need no second code path; it is 0 everywhere else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

#: Largest token count a saved reply may hold (far above any real session; refuses absurd files).
MAX_SAVED_TOKENS = 10**13
#: Largest cost in USD a saved reply may hold.
MAX_SAVED_COST = 1e9


@dataclass(slots=True)
class ResponseMeta:
    """Identity of the response, from the first chunk that carries it."""

    id: str | None
    model: str | None
    system_fingerprint: str | None = None
    created: int | None = None


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's chain of thought (``reasoning_content``)."""

    text: str
    choice: int = 0


@dataclass(slots=True)
class ContentDelta:
    """A piece of the answer (``content``)."""

    text: str
    choice: int = 0


@dataclass(slots=True)
class ToolCallDelta:
    """A fragment of one tool call. ``id`` and ``name`` come on the first
    fragment of a call; later fragments carry only more ``arguments`` text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


@dataclass(slots=True)
class LogprobsDelta:
    """Token log-probabilities for content and/or reasoning tokens."""

    content: tuple[dict[str, Any], ...] = ()
    reasoning: tuple[dict[str, Any], ...] = ()
    choice: int = 0


@dataclass(slots=True)
class Usage:
    """Token counts, normalized across DeepSeek's and OpenAI's field names.

    ``cache_hit_tokens`` reads ``prompt_cache_hit_tokens`` when present and
    ``prompt_tokens_details.cached_tokens`` otherwise (Anyfast documents only
    the latter). ``cost`` is set only when the provider reports one.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Usage:
        """Read an OpenAI/DeepSeek-style ``usage`` object."""
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        details = raw.get("prompt_tokens_details") or {}
        hit = raw.get("prompt_cache_hit_tokens")
        if hit is None:
            hit = details.get("cached_tokens") or 0
        miss = raw.get("prompt_cache_miss_tokens")
        if miss is None:
            miss = max(prompt - int(hit), 0)
        reasoning = (raw.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        total = raw.get("total_tokens")
        cost = raw.get("cost")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=int(total) if total is not None else prompt + completion,
            cache_hit_tokens=int(hit),
            cache_miss_tokens=int(miss),
            reasoning_tokens=int(reasoning),
            cost=float(cost) if cost is not None else None,
        )

    def __add__(self, other: Usage) -> Usage:
        costs = [c for c in (self.cost, other.cost) if c is not None]
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cache_hit_tokens=self.cache_hit_tokens + other.cache_hit_tokens,
            cache_miss_tokens=self.cache_miss_tokens + other.cache_miss_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost=sum(costs) if costs else None,
        )


@dataclass(slots=True)
class Finish:
    """The end of a choice, with the provider's reason.

    ``reason`` is one of ``stop``, ``length``, ``content_filter``,
    ``tool_calls``, ``insufficient_system_resource`` or ``aborted``, passed
    through unchanged so nothing the server said is lost.
    """

    reason: str | None
    matched_stop: str | int | None = None
    choice: int = 0


@dataclass(slots=True)
class Error:
    """An error the server reported inside an otherwise successful stream."""

    message: str
    code: str | None = None
    type: str | None = None


Event = ResponseMeta | ReasoningDelta | ContentDelta | ToolCallDelta | LogprobsDelta | Usage | Finish | Error


@dataclass(slots=True)
class ToolCall:
    """One complete tool call as the model asked for it.

    ``arguments`` is the raw string the model produced; it may be invalid JSON,
    which is the tool loop's business, not the parser's.
    """

    id: str
    name: str
    arguments: str
    index: int = 0

    def to_message(self) -> dict[str, Any]:
        """The OpenAI-shape entry for an assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class Reply:
    """Everything one model response said, assembled from its events.

    ``partial`` is true when the stream stopped before the server finished
    (connection lost, interrupted); ``interrupted`` says the user stopped it.
    """

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    matched_stop: str | int | None = None
    logprobs: dict[str, list[dict[str, Any]]] | None = None
    choices: list[Reply] = field(default_factory=list)
    partial: bool = False
    interrupted: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    data: Any = None
    cached: bool = False

    @property
    def reasoning_exhausted(self) -> bool:
        """True when ``max_tokens`` ran out while the model was still thinking."""
        return self.finish_reason == "length" and not self.content and bool(self.reasoning)

    def to_message(self) -> dict[str, Any]:
        """The assistant message to send back as history.

        ``reasoning_content`` is always present (``""`` when there was none):
        DeepSeek V4 answers 400 when a tools request carries an assistant turn
        without it, and ignores it otherwise.
        """
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "reasoning_content": self.reasoning,
        }
        if self.tool_calls:
            message["tool_calls"] = [call.to_message() for call in self.tool_calls]
        return message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for saving sessions); ``data`` is not included.

        Read back with :func:`deepseek_magic.core.records.saved_reply`, which validates it.
        """
        out = asdict(self)
        out.pop("data", None)
        return out


class _ChoiceState:
    """Text and tool-call fragments of one choice while a stream is running."""

    __slots__ = (
        "by_id",
        "content",
        "finish_reason",
        "logprobs_content",
        "logprobs_reasoning",
        "matched_stop",
        "reasoning",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.by_id: dict[str, ToolCall] = {}
        self.finish_reason: str | None = None
        self.matched_stop: str | int | None = None
        self.logprobs_content: list[dict[str, Any]] = []
        self.logprobs_reasoning: list[dict[str, Any]] = []

    def add_tool_delta(self, delta: ToolCallDelta) -> None:
        # Route by id first (a new id is a new call, even when a server reuses
        # index 0 for it), then by index; keep the first non-empty id and name.
        call: ToolCall | None = None
        if delta.id:
            call = self.by_id.get(delta.id)
            if call is None:
                same_index = self._last_with_index(delta.index)
                if same_index is not None and not same_index.id:
                    call = same_index
                    call.id = delta.id
                    self.by_id[delta.id] = call
        else:
            call = self._last_with_index(delta.index)
        if call is None:
            call = ToolCall(id=delta.id or "", name=delta.name or "", arguments="", index=delta.index)
            self.tool_calls.append(call)
            if delta.id:
                self.by_id[delta.id] = call
        if delta.name and not call.name:
            call.name = delta.name
        if delta.arguments:
            call.arguments += delta.arguments

    def _last_with_index(self, index: int) -> ToolCall | None:
        for call in reversed(self.tool_calls):
            if call.index == index:
                return call
        return None

    def build(self) -> Reply:
        logprobs = None
        if self.logprobs_content or self.logprobs_reasoning:
            logprobs = {"content": self.logprobs_content, "reasoning": self.logprobs_reasoning}
        return Reply(
            content="".join(self.content),
            reasoning="".join(self.reasoning),
            tool_calls=[ToolCall(c.id, c.name, c.arguments, c.index) for c in self.tool_calls],
            finish_reason=self.finish_reason,
            matched_stop=self.matched_stop,
            logprobs=logprobs,
        )


class Accumulator:
    """Builds a :class:`Reply` from events, one event at a time.

    It is cheap to keep around mid-stream: whoever streams can hand it to
    an interrupt handler and still get the partial reply out with
    :meth:`reply`.
    """

    __slots__ = ("_choices", "error", "events_seen", "finished", "meta", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceState] = {0: _ChoiceState()}
        self.meta: ResponseMeta | None = None
        self.usage: Usage | None = None
        self.error: Error | None = None
        self.finished = False
        self.events_seen = 0

    def add(self, event: Event) -> None:
        """Fold one event into the reply being built."""
        self.events_seen += 1
        if isinstance(event, ContentDelta):
            self._choice(event.choice).content.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._choice(event.choice).reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._choice(event.choice).add_tool_delta(event)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish):
            state = self._choice(event.choice)
            state.finish_reason = event.reason
            state.matched_stop = event.matched_stop
            self.finished = True
        elif isinstance(event, ResponseMeta):
            if self.meta is None:
                self.meta = event
        elif isinstance(event, LogprobsDelta):
            state = self._choice(event.choice)
            state.logprobs_content.extend(event.content)
            state.logprobs_reasoning.extend(event.reasoning)
        elif isinstance(event, Error):
            self.error = event

    def _choice(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        return state

    @property
    def content(self) -> str:
        """The answer text of choice 0 so far."""
        return "".join(self._choices[0].content)

    @property
    def reasoning(self) -> str:
        """The reasoning text of choice 0 so far."""
        return "".join(self._choices[0].reasoning)

    def reply(self, *, partial: bool = False, interrupted: bool = False) -> Reply:
        """The reply as it stands (choice 0, with every choice in ``choices``
        when the server returned more than one)."""
        replies = [self._choices[index].build() for index in sorted(self._choices)]
        main = replies[0]
        meta = self.meta or ResponseMeta(None, None)
        for reply in replies:
            reply.id, reply.model, reply.system_fingerprint = meta.id, meta.model, meta.system_fingerprint
        main.usage = self.usage
        main.partial = partial
        main.interrupted = interrupted
        if self.error is not None:
            main.error = self.error.message
        if len(replies) > 1:
            # A copy of choice 0, not ``main`` itself: a reply must not contain itself (to_dict would recurse).
            main.choices = [replace(main), *replies[1:]]
        return main
