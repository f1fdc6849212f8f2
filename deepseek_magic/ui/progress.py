"""Live figures about one reply (timings, token counts) that every view shows.

Counting deltas approximates tokens while streaming (DeepSeek sends about one
token per delta); the final figures come from the server's usage once it
arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from deepseek_magic.core.events import ContentDelta, Event, ReasoningDelta, ToolCallDelta, Usage


@dataclass
class ReplyProgress:
    """Counts and clocks for one reply, fed with its events."""

    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    reasoning_started: float | None = None
    reasoning_ended: float | None = None
    ended: float | None = None
    reasoning_deltas: int = 0
    content_deltas: int = 0
    tool_deltas: int = 0
    usage: Usage | None = None

    def add(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, ReasoningDelta):
            if self.reasoning_started is None:
                self.reasoning_started = now
            self.reasoning_deltas += 1
        elif isinstance(event, (ContentDelta, ToolCallDelta)):
            if self.reasoning_started is not None and self.reasoning_ended is None:
                self.reasoning_ended = now
            if isinstance(event, ContentDelta):
                self.content_deltas += 1
            else:
                self.tool_deltas += 1
        elif isinstance(event, Usage):
            self.usage = event
            return
        else:
            return
        if self.first_token is None:
            self.first_token = now

    def finish(self) -> None:
        self.ended = time.monotonic()
        if self.reasoning_started is not None and self.reasoning_ended is None:
            self.reasoning_ended = self.ended

    @property
    def thinking(self) -> bool:
        """True while reasoning streams and no answer has started."""
        return self.reasoning_started is not None and self.reasoning_ended is None

    @property
    def reasoning_tokens(self) -> int:
        if self.usage is not None and self.usage.reasoning_tokens:
            return self.usage.reasoning_tokens
        return self.reasoning_deltas

    @property
    def reasoning_seconds(self) -> float:
        if self.reasoning_started is None:
            return 0.0
        end = self.reasoning_ended if self.reasoning_ended is not None else time.monotonic()
        return end - self.reasoning_started

    @property
    def elapsed(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return end - self.started

    @property
    def tokens_per_second(self) -> float | None:
        if self.first_token is None:
            return None
        tokens = self.usage.completion_tokens if self.usage else self.reasoning_deltas + self.content_deltas
        span = (self.ended or time.monotonic()) - self.first_token
        return tokens / span if span > 0 and tokens else None

    def reasoning_title(self) -> str:
        """ "Thinking… 412 tokens · 6.2 s" live, "Thought for 9.8 s · 845 tokens" after."""
        if self.thinking:
            return f"Thinking… {self.reasoning_tokens:,} tokens · {self.reasoning_seconds:.1f} s"
        return f"Thought for {self.reasoning_seconds:.1f} s · {self.reasoning_tokens:,} tokens"
