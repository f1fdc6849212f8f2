"""Run the emulator on 127.0.0.1 in a background thread, for tests and notebooks.

The listening socket is bound before the thread starts, so the port is known
(and connections queue) at once; the context manager still waits until uvicorn
reports that it serves.  On exit the server gets a short graceful window, then
open streams are cancelled, so leaving the ``with`` block takes bounded time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from deepseek_magic.emulator.app import EmulatorState, RecordedRequest, create_app
from deepseek_magic.emulator.config import EmulatorConfig

LOOPBACK = "127.0.0.1"


@dataclass
class RunningEmulator:
    """A live emulator: where it listens and what it has received."""

    base_url: str
    config: EmulatorConfig
    app: Starlette

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests in arrival order (a live list; appended under a lock)."""
        state: EmulatorState = self.app.state.emulator
        return state.requests


def bind_socket(host: str = LOOPBACK, port: int = 0) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def make_server(app: Starlette, *, log_level: str = "warning", configure_logging: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app`` that shuts down within a couple of seconds.

    ``configure_logging=False`` leaves the host process's logging setup alone
    (important inside a Jupyter kernel).
    """
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=uvicorn.config.LOGGING_CONFIG if configure_logging else None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )
    return _Server(config, app.state.emulator.closing)


class _Server(uvicorn.Server):
    """uvicorn's server, telling open emulator responses to stop when it is asked to exit."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self.closing = closing

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.closing.set()
        super().handle_exit(sig, frame)


@contextmanager
def run_in_thread(config: EmulatorConfig | None = None, *, startup_timeout: float = 10.0) -> Iterator[RunningEmulator]:
    """Serve an emulator on 127.0.0.1 (random free port) for the ``with`` block."""
    config = config if config is not None else EmulatorConfig()
    app = create_app(config)
    sock = bind_socket()
    port = sock.getsockname()[1]
    server = make_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"deepseek-emulator-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the DeepSeek emulator failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the DeepSeek emulator did not start within {startup_timeout} s")
            time.sleep(0.005)
        yield RunningEmulator(base_url=f"http://{LOOPBACK}:{port}", config=config, app=app)
    finally:
        app.state.emulator.closing.set()
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=2)
        sock.close()
