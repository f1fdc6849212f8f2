"""Saved replies read back through pydantic models: session files and the reply cache.

Why models instead of ``isinstance`` checks: a saved file is input like any
other (hand-edited, cut short, written by another version), and the code
that later reads a reply relies on every field having its type. The models
say what a saved reply may hold in one place, strictly (no "5" for 5, no
``true`` for 1), with bounds on counts and costs; unknown fields are ignored
so a newer file still loads. :func:`one_line` turns pydantic's multi-line
report into the one line a user is shown.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepseek_magic.core.events import MAX_SAVED_COST, MAX_SAVED_TOKENS, Reply, ToolCall, Usage

#: A token count a saved file may hold (anything larger is not a real figure).
Count = Annotated[int, Field(ge=0, le=MAX_SAVED_TOKENS)]
#: A cost in USD a saved file may hold: finite, not negative.
Cost = Annotated[float, Field(ge=0, le=MAX_SAVED_COST, allow_inf_nan=False)]


class SavedRecord(BaseModel):
    """Strict, ignores unknown fields (a newer file still loads), immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class UsageRecord(SavedRecord):
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    total_tokens: Count = 0
    cache_hit_tokens: Count = 0
    cache_miss_tokens: Count = 0
    reasoning_tokens: Count = 0
    cost: Cost | None = None

    def to_usage(self) -> Usage:
        return Usage(**self.model_dump())


class ToolCallRecord(SavedRecord):
    id: str
    name: str
    arguments: str
    index: int = 0

    def to_tool_call(self) -> ToolCall:
        return ToolCall(**self.model_dump())


class ReplyRecord(SavedRecord):
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: UsageRecord | None = None
    finish_reason: str | None = None
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    matched_stop: str | int | None = None
    logprobs: dict[str, Any] | None = None
    choices: list[ReplyRecord] = Field(default_factory=list)
    partial: bool = False
    interrupted: bool = False
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    cached: bool = False

    def to_reply(self) -> Reply:
        return Reply(
            content=self.content,
            reasoning=self.reasoning,
            tool_calls=[call.to_tool_call() for call in self.tool_calls],
            usage=self.usage.to_usage() if self.usage is not None else None,
            finish_reason=self.finish_reason,
            id=self.id,
            model=self.model,
            system_fingerprint=self.system_fingerprint,
            matched_stop=self.matched_stop,
            logprobs=self.logprobs,
            choices=[choice.to_reply() for choice in self.choices],
            partial=self.partial,
            interrupted=self.interrupted,
            error=self.error,
            warnings=list(self.warnings),
            cached=self.cached,
        )


def saved_reply(raw: Any) -> Reply:
    """A :class:`Reply` from what :meth:`Reply.to_dict` saved; anything else raises ``ValueError``.

    (``pydantic.ValidationError`` is a ``ValueError``; its text is
    multi-line, so show users :func:`one_line` of it.)
    """
    return ReplyRecord.model_validate(raw).to_reply()


def one_line(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``where: what`` on one line (and how many more there are)."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    # "a valid dictionary or instance of TurnRecord" names a class the user never wrote: say what JSON is wanted.
    what = "Input should be a JSON object" if first["type"] in ("model_type", "dict_type") else first["msg"]
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}"


__all__ = ["ReplyRecord", "SavedRecord", "ToolCallRecord", "UsageRecord", "one_line", "saved_reply"]
