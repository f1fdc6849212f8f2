"""The notebook view without widgets: one display output updated in place.

``display(..., display_id=True)`` + ``update`` works in JupyterLab, Notebook,
VS Code and Colab, and nbclient applies the updates to the saved notebook, so
the last update (the static bundle) is what the file keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deepseek_magic.core.events import Accumulator, Event, Reply
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.base import display_or_default
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.throttle import Throttle


class DisplayHandleView:
    """Markdown output that grows as the reply streams, updated at most every ``interval`` s."""

    def __init__(
        self,
        header: static.ReplyHeader,
        *,
        interval: float = 0.1,
        display: Callable[..., Any] | None = None,
    ) -> None:
        self.header = header
        self._display = display_or_default(display)
        self._throttle = Throttle(interval)
        self._acc = Accumulator()
        self.progress = ReplyProgress()
        self._handle: Any = None
        self._note = ""
        self.updates = 0
        self.trace: list[ToolResult] = []

    def start(self) -> None:
        self._handle = self._display(self._bundle(self._acc.reply(), live=True), raw=True, display_id=True)

    def on_event(self, event: Event) -> None:
        self._acc.add(event)
        self.progress.add(event)
        if self._throttle.due():
            self._update(self._bundle(self._acc.reply(), live=True))

    def on_tool_result(self, result: ToolResult) -> None:
        self.trace.append(result)
        self._update(self._bundle(self._acc.reply(), live=True))

    def on_retry(self, reason: str) -> None:
        self._acc = Accumulator()
        self._note = reason
        self._update(self._bundle(self._acc.reply(), live=True))

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self._update(static.bundle(reply, self.header, self.progress, status, trace=self.trace))

    def _bundle(self, reply: Reply, *, live: bool) -> dict[str, str]:
        if self._note:
            reply.warnings.append(self._note)
        return static.bundle(reply, self.header, self.progress, live=live, trace=self.trace)

    def _update(self, data: dict[str, str]) -> None:
        self.updates += 1
        if self._handle is None:
            self._handle = self._display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)
