"""Fixtures for the emulator suite: a live emulator on 127.0.0.1 and raw-HTTP helpers.

Everything goes through real HTTP, so these tests exercise the same path a
client does.  ``wire`` wraps an ``httpx.Client`` with helpers that return raw
SSE lines, because the point of several tests is the exact bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.emulator.server import RunningEmulator

KEY = "sk-emulator"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deepseek-real"


@dataclass
class StreamResult:
    """What a client saw of one SSE response."""

    status: int
    headers: httpx.Headers
    lines: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    headers_at: float = 0.0
    error: Exception | None = None

    @property
    def data(self) -> list[str]:
        """Payloads of ``data:`` lines, ``[DONE]`` included."""
        return [line[len("data: ") :] for line in self.lines if line.startswith("data: ")]

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """Parsed JSON chunks (``[DONE]`` excluded)."""
        return [json.loads(d) for d in self.data if d != "[DONE]"]

    def first_data_at(self) -> float:
        return next(t for line, t in zip(self.lines, self.times, strict=True) if line.startswith("data: "))


class Wire:
    """Raw HTTP access to a running emulator."""

    def __init__(self, emu: RunningEmulator) -> None:
        self.emu = emu
        self.http = httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    @staticmethod
    def body(text: str, **fields: Any) -> dict[str, Any]:
        """A minimal chat body with one user message (deepseek-v4-flash unless overridden)."""
        return {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": text}], **fields}

    def post(self, body: Any, path: str = "/chat/completions", **headers: str) -> httpx.Response:
        return self.http.post(path, json=body, headers=headers)

    def stream(self, body: dict[str, Any], path: str = "/chat/completions", **headers: str) -> StreamResult:
        """POST with ``stream: true`` and collect every non-blank line with its arrival time."""
        body = {"stream": True, **body}
        start = time.monotonic()
        with self.http.stream("POST", path, json=body, headers=headers) as response:
            result = StreamResult(response.status_code, response.headers, headers_at=time.monotonic() - start)
            try:
                for line in response.iter_lines():
                    if line:
                        result.lines.append(line)
                        result.times.append(time.monotonic() - start)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                result.error = exc
        return result


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    """One default emulator per test module (starting and stopping one costs ~0.25 s).

    Tests that need fresh state (recorded requests, scripted faults, config) use
    ``make_wire`` instead.
    """
    with run_in_thread(EmulatorConfig()) as running:
        yield running


@pytest.fixture(scope="module")
def wire(emu: RunningEmulator) -> Iterator[Wire]:
    client = Wire(emu)
    yield client
    client.http.close()


@pytest.fixture
def make_wire() -> Iterator[Any]:
    """Start an emulator with a custom config: ``make_wire(EmulatorConfig(...))``."""
    stack: list[tuple[Any, Wire]] = []

    def start(config: EmulatorConfig) -> Wire:
        manager = run_in_thread(config)
        client = Wire(manager.__enter__())
        stack.append((manager, client))
        return client

    yield start
    for manager, client in reversed(stack):
        client.http.close()
        manager.__exit__(None, None, None)


class Recordings:
    """The real DeepSeek recordings vendored in tests/fixtures/deepseek-real."""

    @staticmethod
    def chunks(name: str) -> list[dict[str, Any]]:
        """Chunks of a recorded stream (``.chunks.txt``: one data payload per line)."""
        text = (FIXTURES / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line]

    @staticmethod
    def body(name: str) -> dict[str, Any]:
        """A recorded non-stream body (``.json``)."""
        value: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        return value


@pytest.fixture(scope="session")
def real() -> Recordings:
    assert FIXTURES.is_dir(), f"the vendored recordings are missing: {FIXTURES}"
    return Recordings()
