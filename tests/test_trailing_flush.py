"""A token followed by a pause is shown during the pause (the trailing flush), and Ctrl-C still works.

The stream's body is read on a helper thread (:mod:`deepseek_magic.client.chunk_reader`)
while the cell's thread waits on a queue and calls the view's ``tick``. The
tests are driven by events they control, never by timing: a loopback server
sends two tokens and then *waits until the view has shown the second one*
before it sends the rest. Without the trailing flush the second token would
only be shown when the next one arrives, so the server would wait forever
(the test fails at its deadlock guard).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from comms import record_comms
from shell import TestingShell, loaded_magics

from deepseek_magic import Session, Settings
from deepseek_magic.client.chunk_reader import ChunkReader
from deepseek_magic.ui import static
from deepseek_magic.ui.display_view import DisplayHandleView
from deepseek_magic.ui.widget_view import WidgetReplyView

KEY = "sk-trailing-flush"
HEADER = static.ReplyHeader("deepseek", "deepseek-flash", False)
#: Only guards against a hang (the feature broken): the server gives up waiting after this many seconds.
DEADLOCK_GUARD = 30.0


def _sse(content: str | None, *, finish: bool = False) -> bytes:
    chunk: dict[str, Any] = {
        "id": "t",
        "object": "chat.completion.chunk",
        "choices": [
            {"index": 0, "delta": {} if content is None else {"content": content}, "finish_reason": None},
        ],
    }
    if finish:
        chunk["choices"][0]["finish_reason"] = "stop"
        chunk["usage"] = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    return f"data: {json.dumps(chunk)}\n\n".encode()


class PausingServer:
    """Sends "alpha", " beta", then waits for :attr:`shown` before " gamma" and the end."""

    def __init__(self) -> None:
        self.shown = threading.Event()
        self.waited_in_vain = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(_sse(None) + _sse("alpha"))
                self.wfile.write(_sse(" beta"))
                if not outer.shown.wait(DEADLOCK_GUARD):
                    outer.waited_in_vain = True
                self.wfile.write(_sse(" gamma") + _sse(None, finish=True) + b"data: [DONE]\n\n")
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.shown.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[PausingServer]:
    running = PausingServer()
    yield running
    running.close()


class Watching:
    """A ``display`` for the text view that tells the server once " beta" has been shown."""

    def __init__(self, server: PausingServer) -> None:
        self.server = server
        self.shown: list[str] = []

    def __call__(self, data: Any, **_: Any) -> Watching:
        self.update(data)
        return self

    def update(self, data: dict[str, str], **_: Any) -> None:
        self.shown.append(data["text/markdown"])
        if "beta" in data["text/markdown"] and "gamma" not in data["text/markdown"]:
            self.server.shown.set()


def _session(server: PausingServer) -> Session:
    return Session(settings=Settings.build(api_key=KEY, base_url=server.url, thinking=False, max_retries=0))


def test_the_text_view_shows_a_token_during_the_pause_after_it(server: PausingServer) -> None:
    display = Watching(server)
    view = DisplayHandleView(HEADER, display=display)
    view.start()
    reply = _session(server).ask("Three words.", on_event=view.on_event, on_idle=view.tick)
    view.finish(reply)
    assert not server.waited_in_vain, "the second token was not shown until the next one came"
    assert reply.content == "alpha beta gamma"
    assert any("alpha" in shown and "beta" not in shown for shown in display.shown), "the first token at once"


def test_the_widget_view_shows_a_token_during_the_pause_after_it(
    server: PausingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sink(comm_id: str, kind: str, data: Any) -> None:
        content = (data or {}).get("content") or {}
        if "beta" in content.get("a", "") + content.get("t", ""):
            server.shown.set()

    record_comms(monkeypatch, sink)
    view = WidgetReplyView(HEADER, display=lambda *args, **kwargs: None)
    view.start()
    reply = _session(server).ask("Three words.", on_event=view.on_event, on_idle=view.tick)
    view.finish(reply)
    assert not server.waited_in_vain, "the second token was not shown until the next one came"
    assert reply.content == "alpha beta gamma"


def test_a_cell_passes_its_views_tick_to_the_stream(
    server: PausingServer, testing_shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    display = Watching(server)
    from deepseek_magic.ipython.magics import DeepSeekMagics

    monkeypatch.setattr(DeepSeekMagics, "_view", lambda self, *args: DisplayHandleView(HEADER, display=display))
    with loaded_magics(testing_shell, server.url, KEY, monkeypatch) as shell:
        shell.run_cell("%%deepseek --no-think --no-cache --out said\nThree words.")
        assert shell.user_ns["said"] == "alpha beta gamma"
    assert not server.waited_in_vain, "the cell's view was not flushed while the stream was silent"


# ------------------------------------------------------------------ the reader itself


def test_the_reader_calls_on_idle_while_the_network_is_silent() -> None:
    release = threading.Event()
    idle_calls: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b"first"
        release.wait(DEADLOCK_GUARD)
        yield b"second"

    def on_idle() -> None:
        idle_calls.append(1)
        if len(idle_calls) == 3:
            release.set()  # the body goes on only once the reading thread has been idle three times

    reader = ChunkReader(chunks(), on_idle)
    assert next(reader) == b"first"
    assert next(reader) == b"second"
    assert len(idle_calls) >= 3
    with pytest.raises(StopIteration):
        next(reader)


def test_a_read_error_is_raised_on_the_reading_thread() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("connection reset")

    reader = ChunkReader(chunks(), lambda: None)
    assert next(reader) == b"partial"
    with pytest.raises(httpx.ReadError, match="connection reset"):
        next(reader)


def test_an_interrupt_while_waiting_reaches_the_caller_and_stop_ends_the_reader() -> None:
    never = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield b"first"
        never.wait(DEADLOCK_GUARD)  # a silent server (the thread is woken by stop() through the flag below)
        yield b"late"

    def on_idle() -> None:
        raise KeyboardInterrupt  # what the kernel's Interrupt does to the waiting thread

    reader = ChunkReader(chunks(), on_idle)
    assert next(reader) == b"first"
    with pytest.raises(KeyboardInterrupt):
        next(reader)
    never.set()  # an in-memory body has no socket to shut down; let it end
    reader.stop()
    assert not reader._thread.is_alive()
