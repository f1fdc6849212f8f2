"""The notebook view with widgets: a folded reasoning pane, the answer as rendered Markdown.

Four facts shape it (reference/jupyter-engineering.md §2):

* every assignment to a synced trait ships the whole value, so the reply's
  text never goes into widget state. One :class:`.LiveReply` widget gets, per
  update, one message of what is new: reasoning text, answer text, and each
  finished Markdown block once, rendered and sanitized here
  (:func:`.render.markdown_to_html`). Bytes sent grow with the reply at any
  pace: about twice the answer (once as text while its block is open, once as
  HTML when it is finished) plus a few dozen bytes per update;
* model text is untrusted: the browser shows the open block by building
  elements from text (never an HTML string) and inserts finished blocks only
  after sanitizing the kernel's (already sanitized) HTML once more;
* timers on the kernel's loop do not fire while the cell blocks, so updates
  are coalesced inline (:class:`.Throttle`: the first token at once, then at
  most every ``interval`` seconds) and the stream's reader calls :meth:`tick`
  while the network is silent, so a token followed by a pause is shown within
  about ``interval`` seconds; ``finish`` always flushes;
* a reasoning pane redrawn on every update would snap shut: the browser keeps
  one ``<details>`` element, whose open state is the user's.

When the reply ends the display is replaced by a static HTML/Markdown bundle
(styled like the live view, :mod:`.look`) and the widget is closed, so a saved
notebook needs no widget state: it shows the reply on GitHub, nbviewer and
after reopening, never "Error displaying widget", and the widget's state
never held the reply.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from deepseek_magic.core.events import Accumulator, ContentDelta, Error, Event, ReasoningDelta, Reply, ToolCallDelta
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.base import display_or_default
from deepseek_magic.ui.blocks import BlockSplitter
from deepseek_magic.ui.live_reply import LiveReply
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.render import markdown_to_html, sanitize
from deepseek_magic.ui.throttle import Throttle

WAITING, THINKING, ANSWERING, DONE = "waiting…", "thinking…", "answering…", "done"
#: Seconds between updates. Each update costs ~40 bytes of message around what is new, so at a model's pace
#: (~320 characters a second) fewer updates mean fewer bytes; with the reader's tick (20 ms) a token is still
#: shown within 140 ms.
INTERVAL = 0.12


class WidgetReplyView:
    """One reply as a live widget; a static HTML/Markdown output once it ends.

    ``updates`` counts the flushes that sent anything to the frontend (each
    is at most one content message and one batched trait update).
    """

    def __init__(
        self,
        header: static.ReplyHeader,
        *,
        interval: float = INTERVAL,
        display: Callable[..., Any] | None = None,
    ) -> None:
        self.header = header
        self.interval = interval
        self._display = display_or_default(display)
        self._throttle = Throttle(interval)
        self._acc = Accumulator()
        self._splitter = BlockSplitter()
        self.progress = ReplyProgress()
        self.updates = 0
        self.status = WAITING
        self._handle: Any = None
        self._note = ""
        self._error = ""
        self._reasoning_new: list[str] = []
        self._answer_new: list[str] = []
        self._reset = False
        self._tools_dirty = False
        self.trace: list[ToolResult] = []
        self._finished = False
        self.root: LiveReply | None = None

    # ----------------------------------------------------------- ReplyView

    def start(self) -> None:
        """Build and show the widget (header says "waiting…") before the request goes out."""
        if self.root is not None:
            return
        self.root = LiveReply(self.describe, header=self.header.text(), status=self.status)
        self._handle = self._display(self.root, display_id=True)

    def on_event(self, event: Event) -> None:
        """Take the event in; send an update only if it shows something and one is due."""
        self.start()
        self._acc.add(event)
        self.progress.add(event)
        status = self.status
        if isinstance(event, ReasoningDelta):
            if not event.text:
                return
            self._reasoning_new.append(event.text)
            status = THINKING
        elif isinstance(event, ContentDelta):
            if not event.text:
                return
            self._answer_new.append(event.text)
            status = ANSWERING
        elif isinstance(event, ToolCallDelta):
            self._tools_dirty = True
            status = ANSWERING
        elif isinstance(event, Error):
            self._error = event.message
        else:
            return
        moved_on = status != self.status  # thinking → answering shows at once (a few times per reply)
        self.status = status
        if self._throttle.due() or moved_on:
            self._flush()

    def tick(self) -> None:
        """The stream is silent: show what arrived since the last update once an update is due."""
        if self._throttle.trailing():
            self._flush()

    def on_tool_result(self, result: ToolResult) -> None:
        """A tool ran: the trace shows its call, folded result and time."""
        self.start()
        self.trace.append(result)
        self._tools_dirty = True
        self._flush()

    def on_retry(self, reason: str) -> None:
        """Drop what the failed attempt showed and say why the question is asked again."""
        self.start()
        self._note = reason
        self._error = ""
        self._reasoning_new.clear()
        self._answer_new.clear()
        self._splitter = BlockSplitter()
        self._reset = True
        self._tools_dirty = True
        self._acc = Accumulator()
        self.progress = ReplyProgress(started=self.progress.started)
        self._throttle = Throttle(self.interval)
        self.status = WAITING
        self._flush()

    def finish(self, reply: Reply, status: str = "complete") -> None:
        """Flush the last state, replace the output with the static bundle, close the widget."""
        if self._finished:
            return
        self.start()
        self._finished = True
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self.status = DONE if status == "complete" else status
        self._flush()
        data = static.html_bundle(reply, self.header, self.progress, status, trace=self.trace)
        if self._handle is not None:
            self._handle.update(data, raw=True)
        else:  # a display() that gave no handle: show the static form after the widget
            self._display(data, raw=True)
        assert self.root is not None
        self.root.close()

    # ------------------------------------------------------------ rendering

    def describe(self) -> str:
        """The reply in one short line: the ``text/plain`` of the live output."""
        content = " ".join(self._acc.content.split())
        preview = content[:60] + ("…" if len(content) > 60 else "")
        text = f"[{self.header.text()}] {self.status}"
        if content:
            text += f" {len(content):,} chars: {preview}"
        return text

    def _flush(self) -> None:
        root = self.root
        assert root is not None
        self._throttle.pending = False
        content = self._content()
        sent = False
        if content:
            root.push(content)
            sent = True
        traits = self._traits()
        changed = {name: value for name, value in traits.items() if getattr(root, name) != value}
        if changed:
            with root.hold_sync():  # one message for all of them
                for name, value in changed.items():
                    setattr(root, name, value)
            sent = True
        if sent:
            self.updates += 1

    def _content(self) -> dict[str, Any]:
        """What is new since the last update, as the browser module's message (see ``live_reply.js``)."""
        content: dict[str, Any] = {}
        if self._reset:
            content["reset"] = 1
            self._reset = False
        if self._reasoning_new:
            content["r"] = "".join(self._reasoning_new)
            content["n"] = self.progress.reasoning_deltas
            self._reasoning_new.clear()
        if self._answer_new:
            new = "".join(self._answer_new)
            self._answer_new.clear()
            blocks = self._splitter.feed(new)
            if blocks:
                content["b"] = "".join(markdown_to_html(block) for block in blocks)
                content["t"] = self._splitter.tail
            else:
                content["a"] = new
        return content

    def _traits(self) -> dict[str, str]:
        """The plain-text lines (and the tool trace) as they should be now."""
        traits = {"status": self.status, "note": self._note, "error": self._error}
        if self.progress.reasoning_started is not None and not self.progress.thinking:
            traits["title"] = self.progress.reasoning_title()
        if self._tools_dirty:
            self._tools_dirty = False
            traits.update(self._tools())
        return traits

    def _tools(self) -> dict[str, str]:
        calls = self._acc.reply().tool_calls
        done = {result.call.id for result in self.trace}
        body = static.tool_trace_markdown(self.trace) if self.trace else ""
        body += "".join(
            f"<pre>{html.escape(call.name)}({html.escape(call.arguments)})</pre>"
            for call in calls
            if call.id not in done
        )
        title = f"Tool calls ({len(calls)}): " + ", ".join(call.name for call in calls) if calls else "Tool calls"
        return {"tools": sanitize(body) if body else "", "tools_title": title}
