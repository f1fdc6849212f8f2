"""What the magics ask of a view. A new view is one module implementing this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from deepseek_magic.core.events import Event, Reply
from deepseek_magic.features.tools import ToolResult

DisplayFunction = Callable[..., Any]


def display_or_default(display: DisplayFunction | None) -> DisplayFunction:
    """``display``, or IPython's own (imported late: views are built only when a cell runs)."""
    if display is not None:
        return display
    from IPython.display import display as ipython_display

    return ipython_display


class ReplyView(Protocol):
    """Shows one reply as it streams, then leaves a static form behind."""

    def start(self) -> None:
        """Show the empty reply (header, "waiting") before the request goes out."""

    def on_event(self, event: Event) -> None:
        """One normalized event arrived; update (throttled) if due."""

    def on_retry(self, reason: str) -> None:
        """The reply is being asked again (JSON mode); start over with a note."""

    def finish(self, reply: Reply, status: str = "complete") -> None:
        """The final reply (``status``: complete, interrupted, partial, error)."""


class ToolTraceView(ReplyView, Protocol):
    """A view that also shows each tool call's result and time (optional)."""

    def on_tool_result(self, result: ToolResult) -> None:
        """A tool ran; show its call, its (folded) result and how long it took."""
