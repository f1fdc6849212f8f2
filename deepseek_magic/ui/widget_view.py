"""The notebook view with widgets: a folded reasoning pane, the answer as rendered Markdown.

Three facts shape it (reference/jupyter-engineering.md §2):

* every assignment to ``HTML.value`` ships the whole string, so one HTML
  widget for a growing answer costs O(n²) bytes. Here finished Markdown blocks
  are *frozen* into their own small ``HTML`` widgets and only the growing
  tail is re-sent; a container's ``children`` update carries model ids only,
  and the frozen widgets sit in pages of at most :data:`PAGE_SIZE` so that
  id list stays short too. Reasoning is cut into frozen pieces the same way;
* the HTML widget inserts its value unsanitized, so all model text goes
  through :mod:`.render` (Markdown without raw HTML, then nh3), and a
  reasoning pane inside that HTML would snap shut on every update: it is an
  ``Accordion`` instead, whose open state is the user's;
* timers on the kernel's loop do not fire while the cell blocks, so updates
  are coalesced inline: the first token at once, then at most every
  ``interval`` seconds (:class:`.Throttle`), and ``finish`` always flushes.

When the reply ends the display is replaced by a static HTML/Markdown bundle
and every widget is closed, so a saved notebook needs no widget state: it
shows the reply on GitHub, nbviewer and after reopening, never "Error
displaying widget", and widget state can never carry anything secret.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from deepseek_magic.core.events import Accumulator, ContentDelta, Error, Event, ReasoningDelta, Reply, ToolCallDelta
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.base import display_or_default
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.render import code_html, escape_text, markdown_to_html, open_fence, split_blocks
from deepseek_magic.ui.throttle import Throttle

#: Frozen widgets per page: a page's ``children`` update lists at most this many ids.
PAGE_SIZE = 32
#: Reasoning is frozen in pieces of about this many characters (cut at a line end).
REASONING_PIECE = 1_000
#: Finished lines of a code block still open are frozen once they reach this many characters.
CODE_PIECE = 1_000

WAITING, THINKING, ANSWERING, DONE = "waiting…", "thinking…", "answering…", "done"


class _Factory:
    """Creates the view's widgets, remembering each one so that all can be closed at the end.

    Every HTML piece shares one ``Layout`` and one ``HTMLStyle``: a widget
    created with its own would open two more comms (about 900 bytes) per
    frozen block.
    """

    def __init__(self) -> None:
        self.created: list[Any] = []
        self._layout = self._keep(widgets.Layout())
        self._box_layout = self._keep(widgets.Layout())
        self._style = self._keep(HTMLStyle())

    def _keep(self, widget: Any) -> Any:
        self.created.append(widget)
        return widget

    def html(self, value: str = "") -> Any:
        return self._keep(widgets.HTML(value=value, layout=self._layout, style=self._style))

    def vbox(self, children: tuple[Any, ...] = ()) -> Any:
        return self._keep(widgets.VBox(children=children, layout=self._box_layout))

    def keep(self, widget: Any) -> Any:
        """Track a widget made elsewhere (accordions, the root)."""
        return self._keep(widget)

    def close_all(self) -> None:
        # Containers first, so no frontend view is left pointing at a closed child; then the layout and
        # style models a widget may have made for itself (closing one twice is a no-op).
        for widget in reversed(self.created):
            widget.close()
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
                if part is not None:
                    part.close()
        self.created.clear()


class _Column:
    """Frozen HTML pieces, then one live tail: only the tail is ever re-sent."""

    def __init__(self, factory: _Factory) -> None:
        self._factory = factory
        self.tail = factory.html()
        self.box = factory.vbox((self.tail,))
        self._pages: list[Any] = []
        self.frozen: list[Any] = []

    def freeze(self, fragment: str) -> None:
        piece = self._factory.html(fragment)
        self.frozen.append(piece)
        page = self._pages[-1] if self._pages else None
        if page is None or len(page.children) >= PAGE_SIZE:
            self._pages.append(self._factory.vbox((piece,)))
            self.box.children = (*self._pages, self.tail)
        else:
            page.children = (*page.children, piece)

    def set_tail(self, fragment: str) -> bool:
        if self.tail.value == fragment:
            return False
        self.tail.value = fragment
        return True

    def clear(self) -> None:
        for widget in (*self.frozen, *self._pages):
            widget.close()
        self.frozen.clear()
        self._pages.clear()
        self.box.children = (self.tail,)
        self.tail.value = ""


class _ReplyBox(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The top container. ipywidgets put ``repr(widget)`` in every bundle as ``text/plain``;
    here that is the reply in a few words (not the default trait dump), for text frontends."""

    def __init__(self, describe: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._describe = describe

    def __repr__(self) -> str:
        return self._describe()


def _cut_reasoning(text: str) -> tuple[str, str]:
    """(piece to freeze, rest): cut at the last line end once ``text`` is long enough.

    The newline at the cut is the boundary between two block widgets, so it
    is dropped. A reasoning without line breaks is cut at a space (a visual
    line break) rather than re-sent whole forever.
    """
    if len(text) < REASONING_PIECE:
        return "", text
    cut = text.rfind("\n")
    if cut > 0:
        return text[:cut], text[cut + 1 :]
    if len(text) < 4 * REASONING_PIECE:
        return "", text
    cut = text.rfind(" ")
    cut = cut + 1 if cut > 0 else len(text)
    return text[:cut], text[cut:]


class WidgetReplyView:
    """One reply as live widgets; a static HTML/Markdown output once it ends.

    ``updates`` counts the flushes that sent anything to the frontend (each
    may touch a few widgets: the answer tail, a frozen block, the pane title).
    """

    def __init__(
        self,
        header: static.ReplyHeader,
        *,
        interval: float = 0.1,
        display: Callable[..., Any] | None = None,
    ) -> None:
        self.header = header
        self.interval = interval
        self._display = display_or_default(display)
        self._throttle = Throttle(interval)
        self._acc = Accumulator()
        self.progress = ReplyProgress()
        self.updates = 0
        self.status = WAITING
        self._handle: Any = None
        self._note = ""
        self._error = ""
        self._footer = ""
        self._reasoning_new: list[str] = []
        self._answer_new: list[str] = []
        self._reasoning_pending = ""
        self._answer_pending = ""
        self._code_done = 0  # offset in the answer tail up to which an open code block is frozen
        self._tools_dirty = False
        self.trace: list[ToolResult] = []
        self._finished = False
        self._widgets: _Factory | None = None

    # ----------------------------------------------------------- ReplyView

    def start(self) -> None:
        """Build and show the widgets (header says "waiting…") before the request goes out."""
        if self._widgets is not None:
            return
        make = self._widgets = _Factory()
        self._header_html = make.html(self._header_value())
        self._note_html = make.html()
        self._footer_html = make.html()
        self._reasoning = _Column(make)
        self._answer = _Column(make)
        self.reasoning_pane = make.keep(widgets.Accordion(children=(self._reasoning.box,), selected_index=None))
        self.reasoning_pane.set_title(0, "Thinking…")
        self._tools_html = make.html()
        self.tools_pane = make.keep(widgets.Accordion(children=(self._tools_html,), selected_index=None))
        self.root = make.keep(_ReplyBox(self.describe, children=self._children()))
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
        self._reasoning_pending = self._answer_pending = ""
        self._code_done = 0
        self._reasoning.clear()
        self._answer.clear()
        self._tools_dirty = True
        self._acc = Accumulator()
        self.progress = ReplyProgress(started=self.progress.started)
        self.reasoning_pane.set_title(0, "Thinking…")
        self._throttle = Throttle(self.interval)
        self.status = WAITING
        self._flush()

    def finish(self, reply: Reply, status: str = "complete") -> None:
        """Flush the last state, replace the output with the static bundle, close every widget."""
        if self._finished:
            return
        self.start()
        self._finished = True
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self.status = DONE if status == "complete" else status
        self._footer = static.footer_text(reply, self.progress, status)
        self._flush()
        data = static.html_bundle(reply, self.header, self.progress, status, trace=self.trace)
        if self._handle is not None:
            self._handle.update(data, raw=True)
        else:  # a display() that gave no handle: show the static form after the widget
            self._display(data, raw=True)
        assert self._widgets is not None
        self._widgets.close_all()

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
        sent = self._sync_reasoning()
        sent = self._sync_answer() or sent
        sent = self._sync_tools() or sent
        sent = _assign(self._header_html, "value", self._header_value()) or sent
        sent = _assign(self._note_html, "value", self._note_value()) or sent
        footer = f"<sub>{html.escape(self._footer)}</sub>" if self._footer else ""
        sent = _assign(self._footer_html, "value", footer) or sent
        sent = _assign(self.root, "children", self._children()) or sent
        if sent:
            self.updates += 1

    def _sync_reasoning(self) -> bool:
        sent = False
        if self._reasoning_new:
            text = self._reasoning_pending + "".join(self._reasoning_new)
            self._reasoning_new.clear()
            piece, self._reasoning_pending = _cut_reasoning(text)
            if piece:
                self._reasoning.freeze(escape_text(piece))
                sent = True
            pending = self._reasoning_pending
            sent = self._reasoning.set_tail(escape_text(pending) if pending else "") or sent
        if self.progress.reasoning_started is not None:
            title = self.progress.reasoning_title()
            if self.reasoning_pane.get_title(0) != title:
                self.reasoning_pane.set_title(0, title)
                sent = True
        return sent

    def _sync_answer(self) -> bool:
        if not self._answer_new:
            return False
        blocks, tail = split_blocks(self._answer_pending + "".join(self._answer_new))
        self._answer_new.clear()
        fragments: list[str] = []
        for block in blocks:
            if self._code_done:
                # The block is the code fence whose first lines are frozen already: add the rest of its
                # code (without the closing fence line) rather than render the whole block again.
                rest = block[self._code_done :]
                code = rest[: rest.rfind("\n") + 1]
                if code:
                    fragments.append(code_html(code))
                self._code_done = 0
            else:
                fragments.append(markdown_to_html(block))
        self._answer_pending = tail
        fence = open_fence(tail)
        if fence is not None:
            # A long code block is one Markdown block until it closes: freeze its finished lines meanwhile.
            begin = max(self._code_done, fence[0])
            end = tail.rfind("\n") + 1
            if end - begin >= CODE_PIECE:
                fragments.append(code_html(tail[begin:end]))
                self._code_done = end
        if fragments:
            self._answer.freeze("".join(fragments))
        tail_html = code_html(tail[self._code_done :]) if self._code_done else markdown_to_html(tail)
        return self._answer.set_tail(tail_html) or bool(fragments)

    def _sync_tools(self) -> bool:
        if not self._tools_dirty:
            return False
        self._tools_dirty = False
        calls = self._acc.reply().tool_calls
        done = {result.call.id for result in self.trace}
        body = static.tool_trace_markdown(self.trace) if self.trace else ""
        body += "".join(
            f"<pre>{html.escape(call.name)}({html.escape(call.arguments)})</pre>"
            for call in calls
            if call.id not in done
        )
        sent = _assign(self._tools_html, "value", body)
        title = f"Tool calls ({len(calls)}): " + ", ".join(call.name for call in calls) if calls else "Tool calls"
        if self.tools_pane.get_title(0) != title:
            self.tools_pane.set_title(0, title)
            sent = True
        return sent

    def _header_value(self) -> str:
        return f"<sub>{html.escape(self.header.text())} · <b>{html.escape(self.status)}</b></sub>"

    def _note_value(self) -> str:
        parts = []
        if self._note:
            parts.append(f"<i>{html.escape(self._note)}</i>")
        if self._error:
            parts.append(f"<b>Error:</b> {html.escape(self._error)}")
        return "<br>".join(parts)

    def _children(self) -> tuple[Any, ...]:
        children: list[Any] = [self._header_html]
        if self._note or self._error:
            children.append(self._note_html)
        if self.progress.reasoning_started is not None:
            children.append(self.reasoning_pane)
        children.append(self._answer.box)
        if self._tools_html.value:
            children.append(self.tools_pane)
        if self._footer:
            children.append(self._footer_html)
        return tuple(children)


def _assign(widget: Any, name: str, value: Any) -> bool:
    """Set a synced trait only when it changes; True when that sent a message."""
    if getattr(widget, name) == value:
        return False
    setattr(widget, name, value)
    return True
