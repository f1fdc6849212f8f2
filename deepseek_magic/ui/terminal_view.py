"""The terminal view: deltas printed as they arrive.

Terminal IPython prints every display update again in full, so here text goes
straight to stdout as it streams; reasoning is dimmed when stdout is a TTY.

Everything written from a reply, a tool or a server goes through
:func:`terminal_safe` first: a terminal obeys escape sequences, and a model
can be made to write OSC 52 (set the clipboard), a window title, a cleared
screen or a cursor move that hides text. Removing the control characters
themselves is enough (the rest of a sequence prints as harmless text) and
works however the sequence is split across stream deltas. Only the view's own
dimming codes are written raw.
"""

from __future__ import annotations

import sys
from typing import TextIO

from deepseek_magic.core.errors import strip_controls
from deepseek_magic.core.events import ContentDelta, Event, ReasoningDelta, Reply, ToolCallDelta
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.progress import ReplyProgress

DIM, RESET = "\x1b[2m", "\x1b[0m"


def terminal_safe(text: str) -> str:
    """``text`` without control characters or escape introducers (newlines and tabs kept)."""
    return strip_controls(text)


class TerminalView:
    """Writes reasoning (dimmed) then the answer, then a footer line."""

    def __init__(self, header: static.ReplyHeader, *, stream: TextIO | None = None) -> None:
        self.header = header
        self.out = stream if stream is not None else sys.stdout
        self.progress = ReplyProgress()
        self._colour = bool(getattr(self.out, "isatty", lambda: False)())
        self._section: str | None = None

    def start(self) -> None:
        self._write(f"[{self.header.text()}]\n")

    def on_event(self, event: Event) -> None:
        self.progress.add(event)
        if isinstance(event, ReasoningDelta):
            if self._section != "reasoning":
                self._section = "reasoning"
                self._write("Thinking…\n")
                self._raw(DIM if self._colour else "")
            self._write(event.text)
        elif isinstance(event, ContentDelta):
            self._enter_answer()
            self._write(event.text)
        elif isinstance(event, ToolCallDelta):
            self._enter_answer()
            if event.name:
                self._write(f"\n→ {event.name}(")
            self._write(event.arguments)

    def _enter_answer(self) -> None:
        if self._section == "answer":
            return
        if self._section == "reasoning":
            self._raw(RESET if self._colour else "")
            self._write("\n\n")
        self._section = "answer"

    def on_tool_result(self, result: ToolResult) -> None:
        self._enter_answer()
        mark = "✗" if result.failed else "←"
        shown = result.content if len(result.content) <= 200 else result.content[:200] + "…"
        self._write(f")\n  {mark} {shown} ({result.seconds:.2f} s)\n")

    def on_retry(self, reason: str) -> None:
        self._end_section()
        self._write(f"\n({reason})\n")
        self._section = None

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self._end_section()
        for warning in reply.warnings:
            self._write(f"\n({warning})")
        if reply.error and status != "error":
            # status "error": the exception follows and IPython prints it in one line; printing it here too
            # would show the same error twice.
            self._write(f"\nError: {reply.error}")
        self._write(f"\n-- {static.footer_text(reply, self.progress, status)}\n")

    def _end_section(self) -> None:
        if self._section == "reasoning" and self._colour:
            self._raw(RESET)

    def _write(self, text: str) -> None:
        self._raw(terminal_safe(text))

    def _raw(self, text: str) -> None:
        """Our own escape codes only; anything else goes through :meth:`_write`."""
        self.out.write(text)
        self.out.flush()
