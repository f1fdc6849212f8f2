"""The chat widget behind ``%deepseek chat``: an input, a Send button and a transcript.

Why it shares the cells' session: a chat is one more way to add turns to a
conversation, so a cell run after chatting sees the chat as history (and the
chat sees the cells). Chat turns get keys ``chat-<n>`` that no cell uses, so
each message appends a turn instead of replacing one.

Why the reply streams inside the click handler: frontend events reach the
kernel only while no cell runs (jupyter-engineering.md §2.2), and the handler
runs on the kernel's main thread like a cell, so the kernel's Interrupt still
lands in the read loop. Widget updates leave the kernel at once, so the reply
streams visibly. While it runs, Send and the input are disabled: further
clicks would queue up behind it anyway, and with comms over subshells
(JupyterLab 4.4 + ipykernel 7) they could even arrive on another thread, which
the non-blocking lock turns away.

Two outputs make the chat (:mod:`.saved` says why): the *transcript*, a
static output holding every finished exchange (sanitized ``text/html`` with
Markdown and plain-text twins), and the *live box* below it: the exchange now
streaming (an ``ipywidgets.Output``; display calls made inside ``with
output:`` are routed to it by the frontend) and the input row. When an
exchange ends it leaves the live box and is appended to the transcript with
``update_display_data``, which JupyterLab routes by display id to the chat's
cell even though the click arrived long after the cell ran. So a saved
notebook holds the whole conversation outside any widget state, and reads
well on GitHub, in nbconvert and after reopening. Errors are one line,
never a traceback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from deepseek_magic.conversation.controllers import ChatController
from deepseek_magic.core.errors import DeepSeekError, ReplyError, StreamInterrupted, redact
from deepseek_magic.core.events import Accumulator, Event, Reply
from deepseek_magic.ui import static
from deepseek_magic.ui.base import DisplayFunction, ReplyView, display_or_default
from deepseek_magic.ui.chat_transcript import ChatEntry, transcript_bundle, user_bundle
from deepseek_magic.ui.progress import ReplyProgress
from deepseek_magic.ui.saved import live_bundle
from deepseek_magic.ui.throttle import Throttle

if TYPE_CHECKING:
    from deepseek_magic.conversation.session import Session


class OutputReplyView:
    """A reply streaming into its own small ``Output`` widget, set from the kernel.

    Why not ``display(..., display_id=True)`` + ``update``: the Output widget
    captures ``display_data``, ``stream``, ``error`` and ``clear_output`` but
    swallows ``update_display_data`` (``OutputModel.add`` in
    jupyter-widgets/ipywidgets ``python/jupyterlab_widgets/src/output.ts``;
    issue #1844), so an updated display inside the transcript would stay at
    its first frame. Assigning this widget's ``outputs`` trait is a plain
    state update the frontend model renders (``change:outputs``).
    Updates are coalesced like the other views (first at once, then at most
    every ``interval`` s, always a final one).
    """

    def __init__(
        self, header: static.ReplyHeader, *, display: DisplayFunction | None = None, interval: float = 0.1
    ) -> None:
        self.header = header
        self.widget = widgets.Output()
        self.progress = ReplyProgress()
        self._display = display_or_default(display)
        self._throttle = Throttle(interval)
        self._acc = Accumulator()
        self._note = ""
        self.updates = 0

    def start(self) -> None:
        self._display(self.widget)
        self._show(static.bundle(self._acc.reply(), self.header, self.progress, live=True))

    def on_event(self, event: Event) -> None:
        self._acc.add(event)
        self.progress.add(event)
        if self._throttle.due():
            self._show(self._live())

    def tick(self) -> None:
        """The stream is silent: show what arrived since the last update once an update is due (trailing flush)."""
        if self._throttle.trailing():
            self._show(self._live())

    def on_retry(self, reason: str) -> None:
        self._acc = Accumulator()
        self._note = reason
        self._show(self._live())

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self.progress.finish()
        if reply.usage is not None:
            self.progress.usage = reply.usage
        self._show(static.bundle(reply, self.header, self.progress, status))

    def _live(self) -> dict[str, str]:
        reply = self._acc.reply()
        if self._note:
            reply.warnings.append(self._note)
        return static.bundle(reply, self.header, self.progress, live=True)

    def _show(self, data: dict[str, str]) -> None:
        self.updates += 1
        self.widget.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


class ChatWidget:
    """Chat with a :class:`Session`: displaying it (or :meth:`show`) shows the transcript and the live box.

    ``chat.widget`` is the live box alone (the exchange streaming now, and the
    input row). ``view_factory`` makes the view for each reply (called inside
    the live box's ``with output:``); by default an :class:`OutputReplyView`
    headed with the session's provider and model.
    """

    def __init__(
        self,
        session: Session,
        view_factory: Callable[[], ReplyView] | None = None,
        *,
        multiline: bool = False,
        display: DisplayFunction | None = None,
    ) -> None:
        self.session = session
        #: Does the sending (through the session the cells share); the widget renders what comes back.
        self.controller = ChatController(session)
        self._display = display_or_default(display)
        self.view_factory = view_factory if view_factory is not None else self._default_view
        self.entries: list[ChatEntry] = []
        self._lock = threading.Lock()
        self._count = 0

        placeholder = "Ask DeepSeek…" if multiline else "Ask DeepSeek… (Enter sends)"
        layout = widgets.Layout(width="100%")
        if multiline:
            self.input = widgets.Textarea(placeholder=placeholder, rows=3, layout=layout)
        else:
            self.input = widgets.Text(placeholder=placeholder, layout=layout)
            self.input.on_msg(self._on_input_msg)
        self.send_button = widgets.Button(description="Send", icon="paper-plane", button_style="primary")
        self.send_button.on_click(lambda _: self._send_from_ui())
        #: The exchange streaming now; emptied when it ends (it moves to the transcript).
        self.output = widgets.Output(layout=widgets.Layout(max_height="36em", overflow="auto"))
        self.widget = widgets.VBox(
            [self.output, widgets.HBox([self.input, self.send_button], layout=widgets.Layout(width="100%"))]
        )
        self._transcript: Any = None  # the transcript's display handle, once shown

    def __repr__(self) -> str:
        return f"ChatWidget(session={self.session.name!r}, messages={len(self.entries)})"

    def summary(self) -> str:
        """The live box in words (its ``text/plain``: what a frontend without widgets shows)."""
        return f"DeepSeek chat box · session {self.session.name} (the transcript is the output above)"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live box with a readable ``text/plain`` (the transcript comes with :meth:`show`)."""
        return live_bundle(self.widget, self.summary())

    def _ipython_display_(self) -> None:
        """``display(chat)`` and ``chat`` alone in a cell: the transcript, then the live box."""
        self.show()

    def show(self) -> None:
        """Display the transcript (a static output, updated as messages come) and the live box below it."""
        self._transcript = self._display(self.transcript(), raw=True, display_id=True)
        data, metadata = live_bundle(self.widget, self.summary())
        self._display(data, metadata=metadata, raw=True)

    def transcript(self) -> dict[str, str]:
        """Every finished exchange as a display bundle (sanitized HTML, Markdown, plain text)."""
        return transcript_bundle(self.entries, session=self.session.name)

    def _publish(self) -> None:
        """Put the transcript's new state in its output (a display update: no widget state involved)."""
        if self._transcript is not None and hasattr(self._transcript, "update"):
            self._transcript.update(self.transcript(), raw=True)

    # ----------------------------------------------------------------- sending

    def send(self, text: str | None = None) -> Reply | None:
        """Send ``text`` (default: what is in the input) and stream the reply into the transcript.

        Returns the reply, or ``None`` when nothing was sent, another reply
        is still streaming, or the request failed (the transcript says why,
        and ``entries[-1]`` holds the error and any partial reply). A
        ``KeyboardInterrupt`` keeps the partial turn, is noted in the
        transcript and re-raised.
        """
        if text is None:
            text = self.input.value
        text = text.strip()
        if not text:
            return None
        if not self._lock.acquire(blocking=False):
            return None  # a reply is streaming; the button is disabled, this covers concurrent callers
        interrupted = False
        try:
            self.input.value = ""
            self._set_busy(True)
            entry = ChatEntry(self._next_key(), text)
            self.entries.append(entry)
            # Output.__exit__ would print a traceback for an escaping exception:
            # everything is caught inside, the interrupt re-raised outside.
            with self.output:
                self._display(user_bundle(text), raw=True)
                interrupted = self._exchange(entry)
        finally:
            try:
                self.output.clear_output()  # the exchange moves from the live box to the transcript
                self._publish()
            finally:
                self._set_busy(False)
                self._lock.release()
        if interrupted:
            raise KeyboardInterrupt
        return entry.reply if entry.error is None else None

    def _send_from_ui(self) -> None:
        """The button and Enter: an interrupt ends this reply, not the kernel's message loop."""
        with contextlib.suppress(KeyboardInterrupt):
            self.send()

    def _on_input_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # The Text view sends {"event": "submit"} on Enter; its value has already been synced.
        if content.get("event") == "submit":
            self._send_from_ui()

    def _exchange(self, entry: ChatEntry) -> bool:
        """Ask the session and show the reply; returns True when interrupted."""
        started: list[ReplyView] = []

        def view() -> ReplyView:
            # Started on the first event, so a request refused up front shows only its error line.
            if not started:
                started.append(self.view_factory())
                started[0].start()
            return started[0]

        def on_event(event: Event) -> None:
            view().on_event(event)

        def on_retry(reason: str) -> None:
            view().on_retry(reason)

        def on_idle() -> None:  # called while the stream is silent: a pending token is shown within ~0.1 s
            if started:
                tick = getattr(started[0], "tick", None)
                if tick is not None:
                    tick()

        def finish(reply: Reply, status: str) -> None:
            view().finish(reply, status)
            entry.reply, entry.status = reply, status
            entry.progress = getattr(started[0], "progress", None)

        try:
            reply = self.controller.send(
                entry.text, key=entry.key, on_event=on_event, on_retry=on_retry, on_idle=on_idle
            )
        except KeyboardInterrupt:
            turn = self.session.turn(entry.key)
            if turn is not None:
                finish(turn.reply, "interrupted")
            entry.error = "⏹ interrupted (the partial reply is kept)"
            return True
        except (StreamInterrupted, ReplyError) as exc:
            partial = exc.partial if isinstance(exc, StreamInterrupted) else exc.reply
            if partial is not None:
                finish(partial, "partial" if isinstance(exc, StreamInterrupted) else "error")
            entry.error = self._describe(exc)
            return False
        except Exception as exc:  # one line for anything else too: a traceback helps nobody here
            if started:
                view().finish(Reply(partial=True), "error")
            entry.error = self._describe(exc)
            return False
        finish(reply, "complete")
        return False

    def _describe(self, exc: BaseException) -> str:
        detail = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return "⚠ " + redact(text, *self.session.settings.secrets_to_redact())

    def _next_key(self) -> str:
        """``chat-<n>`` not yet used in the session, so the turn appends (several chats may share it)."""
        while True:
            self._count += 1
            key = f"chat-{self._count}"
            if self.session.turn(key) is None:
                return key

    def _set_busy(self, busy: bool) -> None:
        with self.send_button.hold_sync():  # one message for both button traits
            self.send_button.disabled = busy
            self.send_button.description = "…" if busy else "Send"
        self.input.disabled = busy

    def _default_view(self) -> ReplyView:
        from deepseek_magic.providers import get_provider

        settings = self.session.settings
        try:
            provider = get_provider(settings.provider).display_name
        except DeepSeekError:
            provider = settings.provider
        header = static.ReplyHeader(
            provider=provider,
            model=settings.model,
            thinking=settings.thinking,
            effort=settings.effort,
            session=self.session.name,
        )
        return OutputReplyView(header, display=self._display)
