"""The chat widget against the emulator, headless, on a recording comm."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from comms import Transcript, record_comms

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.events import ContentDelta, Event, Reply
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.ui.chat_widget import ChatWidget, OutputReplyView
from deepseek_magic.ui.static import ReplyHeader

KEY = "sk-emulator-chat-7c1d9e0b2a"


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any, str]]]:
    """Every (message type, data, comm id) the widgets made in the test would publish."""
    log: list[tuple[str, Any, str]] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append((kind, data, comm_id)))
    yield log


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


class RecordingView:
    """A ReplyView that notes what it was told (and what the chat looked like meanwhile)."""

    def __init__(self, chat: ChatWidget | None = None) -> None:
        self.chat = chat
        self.calls: list[str] = []
        self.send_disabled_while_streaming: list[bool] = []
        self.final: Reply | None = None
        self.status: str | None = None

    def start(self) -> None:
        self.calls.append("start")

    def on_event(self, event: Event) -> None:
        self.calls.append(type(event).__name__)
        if self.chat is not None:
            self.send_disabled_while_streaming.append(self.chat.send_button.disabled and self.chat.input.disabled)

    def on_retry(self, reason: str) -> None:
        self.calls.append("retry")

    def finish(self, reply: Reply, status: str = "complete") -> None:
        self.calls.append("finish")
        self.final, self.status = reply, status


def collecting(views: list[RecordingView], make: Callable[[], RecordingView]) -> Callable[[], RecordingView]:
    """A view factory that also keeps every view it made."""

    def factory() -> RecordingView:
        views.append(make())
        return views[-1]

    return factory


def new_session(emu: Any, **options: Any) -> Session:
    settings = Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01, **options)
    return Session("default", settings=settings)


def chat_bodies(emu: Any) -> list[dict[str, Any]]:
    return [request.body for request in emu.requests if request.path.endswith("/chat/completions")]


def frontend(widget: Any, data: dict[str, Any]) -> None:
    widget.comm.handle_msg({"content": {"data": data}, "buffers": []})


def test_two_messages_make_two_chat_turns_with_history(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    transcript = Transcript()
    chat = ChatWidget(session, display=transcript)

    first = chat.send("Remember: the word is swordfish")
    second = chat.send("What was the word?")

    assert first is not None and first.content and second is not None and second.content
    assert [turn.key for turn in session.turns] == ["chat-1", "chat-2"]
    assert [turn.prompt for turn in session.turns] == ["Remember: the word is swordfish", "What was the word?"]
    sent = emulator.requests[-1].body["messages"]
    assert sent[0] == {"role": "user", "content": "Remember: the word is swordfish"}
    assert sent[1]["role"] == "assistant" and sent[1]["content"] == first.content
    assert sent[2] == {"role": "user", "content": "What was the word?"}

    # A cell run after the chat (same session, its own key) sees the chat's turns.
    session.ask("Summarise our chat", key="cell-after")
    cell_messages = chat_bodies(emulator)[-1]["messages"]
    assert [m["role"] for m in cell_messages] == ["user", "assistant", "user", "assistant", "user"]
    assert cell_messages[3]["content"] == second.content
    assert [turn.key for turn in session.turns] == ["chat-1", "chat-2", "cell-after"]

    # The live box showed each user message, then its reply view (a widget of its own), while it streamed.
    assert transcript.lines == ["You: Remember: the word is swordfish", "You: What was the word?"]
    views = [item for item in transcript.items if not isinstance(item, dict)]
    assert len(views) == 2
    final = views[-1].outputs[-1]["data"]
    assert second.content in final["text/plain"] and second.content in final["text/markdown"]
    assert KEY not in json.dumps(messages, default=str)
    # Both exchanges are in the static transcript.
    kept = chat.transcript()
    assert "You: Remember: the word is swordfish" in kept["text/plain"] and second.content in kept["text/plain"]
    assert "2 messages" in kept["text/plain"]


def test_a_later_chat_message_sees_turns_made_by_cells(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    from_cell = session.ask("A cell asked first", key="cell-1")
    chat = ChatWidget(session, lambda: RecordingView(), display=Transcript())
    chat.send("And now the chat")
    sent = emulator.requests[-1].body["messages"]
    assert sent[0]["content"] == "A cell asked first" and sent[1]["content"] == from_cell.content
    assert [turn.key for turn in session.turns] == ["cell-1", "chat-1"]


def test_enter_sends_clears_the_input_and_disables_send_meanwhile(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    views: list[RecordingView] = []
    chat = ChatWidget(session, collecting(views, lambda: RecordingView(chat)), display=Transcript())

    frontend(chat.input, {"method": "update", "state": {"value": "Hello there"}, "buffer_paths": []})
    frontend(chat.input, {"method": "custom", "content": {"event": "submit"}})

    assert chat.input.value == ""
    assert len(session.turns) == 1 and session.turns[0].prompt == "Hello there"
    view = views[0]
    assert view.calls[0] == "start" and view.calls[-1] == "finish" and view.status == "complete"
    assert view.send_disabled_while_streaming and all(view.send_disabled_while_streaming)
    assert not chat.send_button.disabled and not chat.input.disabled
    assert chat.send_button.description == "Send"
    # The frontend was told to disable the button (one message), then to enable it again.
    button = chat.send_button.comm.comm_id
    states = [data["state"] for kind, data, comm_id in messages if kind == "comm_msg" and comm_id == button]
    assert states == [{"disabled": True, "description": "…"}, {"disabled": False, "description": "Send"}]


def test_send_button_click_sends_the_input(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    chat = ChatWidget(session, lambda: RecordingView(), display=Transcript())
    chat.input.value = "Clicked"
    frontend(chat.send_button, {"method": "custom", "content": {"event": "click"}})
    assert [turn.prompt for turn in session.turns] == ["Clicked"]
    assert chat.send("   ") is None  # nothing to send


def test_an_error_is_one_line_in_the_transcript(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator, extra_headers={"X-Emulator-Fault": "status=402"})
    transcript = Transcript()
    views: list[RecordingView] = []
    chat = ChatWidget(session, collecting(views, RecordingView), display=transcript)

    assert chat.send("Costly question") is None

    assert transcript.lines == ["You: Costly question"]
    error = chat.entries[-1].error or ""
    assert chat.transcript()["text/plain"].endswith("You: Costly question\n" + error)
    assert error.startswith("⚠ InsufficientBalanceError: Insufficient balance") and "HTTP 402" in error
    assert "\n" not in error and "Traceback" not in error
    assert views == []  # refused up front: no empty reply view, only the line
    assert session.turns == []  # nothing was answered, nothing to remember
    assert not chat.send_button.disabled
    assert KEY not in error


def test_a_lost_stream_keeps_the_partial_reply_and_says_so(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator, extra_headers={"X-Emulator-Fault": "drop_after=3"})
    transcript = Transcript()
    views: list[RecordingView] = []
    chat = ChatWidget(session, collecting(views, RecordingView), display=transcript)

    assert chat.send("Tell me a long story") is None

    assert chat.entries[-1].reply is not None and chat.entries[-1].reply.partial
    assert views and views[0].status == "partial"
    assert (chat.entries[-1].error or "").startswith("⚠ StreamInterrupted:")
    assert chat.entries[-1].status == "partial"
    assert "connection lost (partial reply)" in chat.transcript()["text/plain"]
    assert session.turns[0].status == "partial"


def test_interrupt_keeps_the_turn_and_is_reraised_from_send(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    transcript = Transcript()

    class Interrupting(RecordingView):
        def on_event(self, event: Event) -> None:
            super().on_event(event)
            if isinstance(event, ContentDelta):
                raise KeyboardInterrupt

    views: list[RecordingView] = []
    chat = ChatWidget(session, collecting(views, Interrupting), display=transcript)

    with pytest.raises(KeyboardInterrupt):
        chat.send("Interrupt me")
    assert views[0].status == "interrupted"
    assert session.turns[0].status == "interrupted"
    assert (chat.entries[-1].error or "").startswith("⏹ interrupted")
    assert chat.entries[-1].reply is not None and chat.entries[-1].reply.content, "the partial reply is kept"
    assert "⏹ interrupted" in chat.transcript()["text/plain"]
    assert not chat.send_button.disabled

    # From the UI the interrupt ends the reply, not the kernel's message handling.
    chat.input.value = "Again"
    frontend(chat.send_button, {"method": "custom", "content": {"event": "click"}})
    assert [turn.key for turn in session.turns] == ["chat-1", "chat-2"]


def test_a_second_send_while_streaming_is_refused(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    nested: list[Reply | None] = []

    class Reentrant(RecordingView):
        def on_event(self, event: Event) -> None:
            if not nested:
                nested.append(chat.send("sneaky"))

    chat = ChatWidget(session, Reentrant, display=Transcript())
    assert chat.send("first") is not None
    assert nested == [None]
    assert [turn.prompt for turn in session.turns] == ["first"]


def test_chat_keys_never_replace_existing_turns(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    one = ChatWidget(session, lambda: RecordingView(), display=Transcript())
    two = ChatWidget(session, lambda: RecordingView(), display=Transcript())
    one.send("from the first chat")
    two.send("from the second chat")
    one.send("first chat again")
    assert [turn.key for turn in session.turns] == ["chat-1", "chat-2", "chat-3"]


def test_output_reply_view_updates_its_widget(messages: list[Any]) -> None:
    shown: list[Any] = []
    view = OutputReplyView(
        ReplyHeader(provider="DeepSeek", model="deepseek-v4-flash"), display=lambda obj, **_: shown.append(obj)
    )
    view.start()
    assert shown == [view.widget]
    for piece in ("Hello", ", ", "world"):
        view.on_event(ContentDelta(piece))
    view.finish(Reply(content="Hello, world", finish_reason="stop"))
    data = view.widget.outputs[-1]["data"]
    assert "Hello, world" in data["text/markdown"] and "stop" in data["text/plain"]
    assert view.updates >= 2  # first frame at once, always a final one
    assert any(kind == "comm_msg" and "outputs" in data.get("state", {}) for kind, data, _ in messages)


def test_repr_names_the_session(emulator: Any, messages: list[Any]) -> None:
    chat = ChatWidget(new_session(emulator), display=Transcript())
    assert repr(chat) == "ChatWidget(session='default', messages=0)"
    data, metadata = chat._repr_mimebundle_()
    assert data["text/plain"] == "DeepSeek chat box · session default (the transcript is the output above)"
    assert "VBox" not in data["text/plain"] and data["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert metadata == {"deepseek_magic": {"live_widget": True}}
    assert KEY not in repr(chat.widget)


def test_each_finished_exchange_is_appended_to_the_static_transcript(emulator: Any, messages: list[Any]) -> None:
    """The transcript is a plain display output updated after each exchange: no widget state involved."""
    transcript = Transcript()
    chat = ChatWidget(new_session(emulator), display=transcript)
    chat.show()
    assert transcript.metadata[0] == {} and transcript.metadata[1] == {"deepseek_magic": {"live_widget": True}}
    assert transcript.items[0]["text/plain"] == "DeepSeek chat · session default · 0 messages"
    assert transcript.items[1]["application/vnd.jupyter.widget-view+json"]["model_id"] == chat.widget.model_id

    first = chat.send("Say <b>hi</b> & **bold**")
    assert first is not None
    kept = transcript.items[0]
    assert set(kept) == {"text/html", "text/markdown", "text/plain"}
    assert "<b>hi</b>" not in kept["text/html"] and "Say &lt;b&gt;hi&lt;/b&gt; &amp; **bold**" in kept["text/html"]
    assert "[emulated]" in kept["text/html"] and "<script" not in kept["text/html"]
    assert chat.output.outputs == (), "the finished exchange left the live box"

    chat.send("And again")
    kept = transcript.items[0]
    assert kept["text/plain"].index("You: Say <b>hi</b>") < kept["text/plain"].index("You: And again")
    assert "2 messages" in kept["text/plain"]
    assert KEY not in json.dumps(transcript.items, default=str)


@pytest.mark.slow
def test_on_a_real_kernel_the_key_stays_off_iopub_and_the_chat_streams_into_its_output() -> None:
    """ipykernel's own comms: what a browser would receive, key included or not."""
    from kernel import real_kernel

    def frontend_message(kernel: Any, comm_id: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        message = kernel.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        kernel.client.shell_channel.send(message)
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                reply = kernel.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
                got.append(reply)
                if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                    return got
        raise TimeoutError("the kernel did not finish handling the widget message")

    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu, real_kernel({}) as kernel:
        setup = kernel.run(
            "from deepseek_magic.client import ChatClient\n"
            "from deepseek_magic.config.settings import Settings\n"
            "from deepseek_magic.conversation.session import Session\n"
            "from deepseek_magic.ui.chat_widget import ChatWidget\n"
            "from deepseek_magic.ui.settings_form import SettingsForm\n"
            f"settings = Settings.build(base_url={emu.base_url!r})\n"
            "form = SettingsForm(settings, ChatClient())\n"
            "chat = ChatWidget(Session(settings=settings))\n"
            "print(form.api_key.model_id, form.test_button.model_id, chat.input.model_id, chat.output.model_id)"
        )
        key_field, test_button, chat_input, transcript = setup.text().split()
        wire = frontend_message(kernel, key_field, {"method": "update", "state": {"value": KEY}, "buffer_paths": []})
        wire += frontend_message(kernel, test_button, {"method": "custom", "content": {"event": "click"}})
        state = {"method": "update", "state": {"value": "Hello from the chat"}, "buffer_paths": []}
        wire += frontend_message(kernel, chat_input, state)
        chat_wire = frontend_message(kernel, chat_input, {"method": "custom", "content": {"event": "submit"}})
        wire += chat_wire
        check = kernel.run("print(form.connection.value); print([t.key for t in chat.session.turns])")

    assert KEY not in json.dumps(wire, default=str)
    assert "balance: 100.00 USD" in check.text() and "['chat-1']" in check.text()
    # The transcript captured the chat's outputs: its msg_id was the submit message's own id.
    capture = [m for m in chat_wire if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == transcript]
    parent = chat_wire[0]["parent_header"]["msg_id"]
    assert capture[0]["content"]["data"]["state"] == {"msg_id": parent}
    shown = [m["content"]["data"].get("text/plain") for m in chat_wire if m["msg_type"] == "display_data"]
    assert shown[0] == "You: Hello from the chat"


def test_a_chat_reply_shows_a_pending_token_on_the_next_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trailing flush: a token inside the coalescing interval is shown by a tick, not by the next event."""
    now = [100.0]
    monkeypatch.setattr("deepseek_magic.ui.throttle.time", SimpleNamespace(monotonic=lambda: now[0]))
    view = OutputReplyView(ReplyHeader(provider="DeepSeek", model="deepseek-v4-flash"), display=lambda *_, **__: None)
    view.start()
    view.on_event(ContentDelta("Hello"))  # the first update goes out at once
    now[0] += 0.01
    view.on_event(ContentDelta(" world"))  # inside the interval: pending
    shown = view.updates
    assert "world" not in view.widget.outputs[-1]["data"]["text/markdown"]
    view.tick()  # still inside the interval: nothing yet
    assert view.updates == shown
    now[0] += 0.2
    view.tick()  # the stream is silent and the interval has passed: the pending token is shown
    assert view.updates == shown + 1 and "Hello world" in view.widget.outputs[-1]["data"]["text/markdown"]
    view.tick()  # nothing new: no update
    assert view.updates == shown + 1


def test_the_chat_passes_an_idle_callback_to_the_stream(emulator: Any, messages: list[Any]) -> None:
    session = new_session(emulator)
    idle: list[Any] = []
    chat = ChatWidget(session, display=Transcript())
    original = chat.controller.send

    def send(*args: Any, **kwargs: Any) -> Reply:
        idle.append(kwargs.get("on_idle"))
        return original(*args, **kwargs)

    chat.controller.send = send  # type: ignore[method-assign]
    chat.send("hello")
    assert len(idle) == 1 and callable(idle[0]), "the chat's view gets the stream's silent moments"
