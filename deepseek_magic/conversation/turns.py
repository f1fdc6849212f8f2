"""One turn of a conversation: a user message and the reply to it, made by one cell.

Kept apart from :mod:`.session` so the session file format (:mod:`.store`)
can build turns without importing the session that sends requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from deepseek_magic.core.events import Reply

TurnStatus = Literal["complete", "partial", "interrupted"]


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
