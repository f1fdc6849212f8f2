"""The IPython terminal's view: Markdown rendered by Rich, reasoning dimmed, a live footer.

Why not one ``rich.live.Live`` holding the whole reply: a live region taller
than the terminal cannot be redrawn (Rich repeats or crops it). So only what
is still changing is live: the unfinished Markdown block (the answer's tail,
cut with :func:`.render.split_blocks`), the reasoning's unfinished line and a
footer with tokens, time and speed. Everything finished is printed once,
above the live region, and stays in the scrollback as rendered Markdown.

Model text is untrusted here too: control characters and escape introducers
are stripped before Rich sees the text (:func:`.terminal_view.terminal_safe`),
model strings are never passed to Rich as console markup (``[bold]`` in a
reply stays text), and links are printed as text with their URL rather than
as clickable terminal hyperlinks.

Ctrl-C: the magic catches the interrupt, the session keeps the partial turn,
this view ends its live region and prints the partial reply, and the magic
raises :meth:`RichTerminalView.interrupt_error`, which IPython prints as one
line, not ~100 lines of frames through httpx.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment, Segments
from rich.text import Text

from deepseek_magic.core.events import ContentDelta, Event, ReasoningDelta, Reply, ToolCallDelta
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.render import split_blocks
from deepseek_magic.ui.terminal_view import ReplyInterrupted, terminal_safe
from deepseek_magic.ui.throttle import Throttle

_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s")
#: Redraws of the live region per second, at most.
REFRESH = 10


class RichTerminalView:
    """Reasoning (dim, line by line), the answer as Markdown block by block, and a live footer."""

    def __init__(
        self, header: static.ReplyHeader, *, console: Console | None = None, stream: TextIO | None = None
    ) -> None:
        self.header = header
        self.console = console if console is not None else Console(file=stream or sys.stdout, highlight=False)
        self.progress = ReplyProgress()
        self._throttle = Throttle(1 / REFRESH)
        self._live: Live | None = None
        self._reasoning_line = ""  # the unfinished line of reasoning
        self._reasoning_printed = False
        self._answer = ""
        self._blocks_printed = 0
        self._last_block = ""
        self._tools = ""
        self._gap = False  # the blank line between the reasoning and the answer, printed once

    # ------------------------------------------------------------------ protocol

    def start(self) -> None:
        self.console.print(Text(f"[{self.header.text()}]", style="bold cyan"))
        self._live = Live(
            self._live_part(),
            console=self.console,
            auto_refresh=False,  # redrawn from on_event at most REFRESH times a second: no thread of its own
            transient=True,  # the live region disappears; what it showed is printed for good by finish()
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def on_event(self, event: Event) -> None:
        self.progress.add(event)
        if isinstance(event, ReasoningDelta):
            self._add_reasoning(terminal_safe(event.text))
        elif isinstance(event, ContentDelta):
            self._end_reasoning()
            self._answer += terminal_safe(event.text)
            self._print_finished_blocks()
        elif isinstance(event, ToolCallDelta):
            self._end_reasoning()
            if event.name:
                self._tools += f"\n→ {terminal_safe(event.name)}("
            self._tools += terminal_safe(event.arguments)
        if self._throttle.due():
            self._refresh()

    def on_tool_result(self, result: ToolResult) -> None:
        mark = "✗" if result.failed else "←"
        shown = result.content if len(result.content) <= 200 else result.content[:200] + "…"
        self._print(
            Text(f"{self._tools.strip()})\n  {mark} {terminal_safe(shown)} ({result.seconds:.2f} s)", style="dim")
        )
        self._tools = ""

    def on_retry(self, reason: str) -> None:
        self._end_reasoning()
        self._print(Text(f"({terminal_safe(reason)})", style="yellow"))
        self._answer, self._blocks_printed, self._tools = "", 0, ""

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self._stop_live()
        if reply.reasoning and not self._reasoning_printed and not self.progress.reasoning_deltas:
            self._add_reasoning(terminal_safe(reply.reasoning))  # a cached or non-streamed reply: no deltas came
        self._end_reasoning()
        answer = terminal_safe(reply.content)
        if not answer.startswith(self._answer):
            # The final text is not what streamed (a retry, a cached reply): show the final one whole.
            self._answer, self._blocks_printed = "", 0
        self._answer = answer
        blocks, tail = split_blocks(answer)
        for block in [*blocks[self._blocks_printed :], *([tail] if tail.strip() else [])]:
            self._print_block(block)
        if self._tools.strip():
            self._print(Text(self._tools.strip(), style="dim"))
        for warning in reply.warnings:
            self._print(Text(f"({terminal_safe(warning)})", style="yellow"))
        if reply.error and status != "error":
            # status "error": the exception follows and IPython prints it in one line; not twice.
            self._print(Text(f"Error: {terminal_safe(reply.error)}", style="red"))
        footer = static.footer_text(reply, self.progress, status)
        self.console.print(Text(f"-- {terminal_safe(footer)}", style="dim"))

    def interrupt_error(self, reply: Reply) -> ReplyInterrupted:
        """The one-line exception the magic raises after Ctrl-C (the partial reply is kept)."""
        return ReplyInterrupted.for_reply(reply, self.header.session)

    # ------------------------------------------------------------------ pieces

    def _add_reasoning(self, text: str) -> None:
        if not self._reasoning_printed:
            self._print(Text("Thinking…", style="dim bold"))
            self._reasoning_printed = True
        lines = (self._reasoning_line + text).split("\n")
        for line in lines[:-1]:
            self._print(Text(line, style="dim"))
        self._reasoning_line = lines[-1]

    def _end_reasoning(self) -> None:
        if self._reasoning_line:
            self._print(Text(self._reasoning_line, style="dim"))
            self._reasoning_line = ""
        if self._reasoning_printed and not self._gap:
            self._print(Text(""))
            self._gap = True

    def _print_finished_blocks(self) -> None:
        blocks, _ = split_blocks(self._answer)
        for block in blocks[self._blocks_printed :]:
            self._print_block(block)
        self._blocks_printed = max(self._blocks_printed, len(blocks))

    def _print_block(self, block: str) -> None:
        block = block.strip("\n")
        if not block.strip():
            return
        if self._last_block and not (_LIST_ITEM.match(self._last_block) and _LIST_ITEM.match(block)):
            self._print(Text(""))  # one blank line between blocks, as in a whole document; list items stay tight
        self._print(self._trimmed(_markdown(block)), end="")
        self._last_block = block

    def _trimmed(self, renderable: RenderableType) -> Segments:
        """``renderable`` without the blank lines Rich puts around some blocks when they stand alone."""
        lines = self.console.render_lines(renderable, self.console.options, pad=False)
        while lines and _blank(lines[0]):
            lines.pop(0)
        while lines and _blank(lines[-1]):
            lines.pop()
        return Segments([segment for line in lines for segment in (*line, Segment.line())])

    def _print(self, renderable: RenderableType, end: str = "\n") -> None:
        """Print above the live region (or plainly once it has ended)."""
        console = self._live.console if self._live is not None else self.console
        console.print(renderable, end=end)

    def _live_part(self) -> RenderableType:
        parts: list[RenderableType] = []
        if self._reasoning_line:
            parts.append(Text(self._reasoning_line, style="dim"))
        _, tail = split_blocks(self._answer)
        if tail.strip():
            parts.append(_markdown(tail))
        if self._tools.strip():
            parts.append(Text(self._tools.strip(), style="dim"))
        parts.append(Text(self._footer(), style="dim italic"))
        return Group(*parts)

    def _footer(self) -> str:
        progress = self.progress
        if progress.first_token is None:
            return f"waiting… {progress.elapsed:.1f} s"
        if progress.thinking:
            return progress.reasoning_title()
        tokens = progress.content_deltas + progress.tool_deltas
        parts = [f"answering… {tokens:,} tokens", f"{progress.elapsed:.1f} s"]
        speed = progress.tokens_per_second
        if speed:
            parts.append(f"{speed:.0f} tok/s")
        return " · ".join(parts)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._live_part(), refresh=True)

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()


def _blank(line: list[Segment]) -> bool:
    return not "".join(segment.text for segment in line).strip()


def _markdown(text: str) -> Markdown:
    """Rich Markdown of model text: links printed with their URL, never as clickable escape sequences."""
    return Markdown(text, hyperlinks=False)
