"""Every read of network data is bounded, and parsing is depth-safe (issue #13).

Floods come from the emulator's faults (``huge_line``, ``huge_error_body``) and from a small misbehaving
server written here; the client runs in a child process so its own peak memory can be measured. The bounds
asked for are generous on purpose: a 60 MiB line is stopped within 15 s and under 400 MB of RSS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.client.sse import SSEDecoder, SSEOverflow
from deepseek_magic.conversation.store import MAX_SESSION_FILE_BYTES, SessionFileError
from deepseek_magic.core.errors import DeepSeekError, InvalidRequestError
from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread

KEY = "sk-emulator"
REPO = Path(__file__).resolve().parents[2]
#: The bounds issue #13 asks for.
FLOOD_SECONDS = 15.0
FLOOD_RSS_MB = 400.0

CHILD = """
import json, resource, sys, time
from deepseek_magic import Session, Settings
from deepseek_magic.core.errors import DeepSeekError

url, stream = sys.argv[1], sys.argv[2] == "stream"
session = Session(settings=Settings.build(base_url=url, api_key="sk-emulator", backoff_base=0.01))
started = time.monotonic()
try:
    reply = session.ask("Name three primes", key="k", stream=stream)
    outcome = "complete: " + reply.content[:20]
except DeepSeekError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
turn = session.turn("k")

def peak_rss_mb():
    # VmHWM belongs to this process image alone; ru_maxrss survives fork+exec on Linux and would report the
    # parent's (the test runner's) peak instead.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(json.dumps({
    "seconds": time.monotonic() - started,
    "rss_mb": peak_rss_mb(),
    "outcome": outcome,
    "turn": turn.status if turn is not None else None,
}))
"""


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault_left(emu: RunningEmulator) -> Iterator[None]:
    yield
    emu.config.faults.clear()


def in_child(emu: RunningEmulator, spec: str, *, stream: bool) -> dict[str, Any]:
    """Ask once from a fresh interpreter with ``spec`` scripted; its timing, peak RSS and outcome."""
    emu.config.faults.append(spec)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, emu.base_url, "stream" if stream else "body"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{spec} ({'stream' if stream else 'body'}): {result}")  # the figures, for the report (-s)
    return result


# ----------------------------------------------------------------------------------------------- floods


def test_a_60_mib_line_is_stopped_in_time_and_memory(emu: RunningEmulator) -> None:
    result = in_child(emu, "huge_line=60", stream=True)
    assert result["outcome"].startswith("StreamInterrupted: ") and "over 8 MiB" in result["outcome"]
    assert result["turn"] == "partial", "what arrived before the flood is kept"
    assert result["seconds"] < FLOOD_SECONDS
    assert result["rss_mb"] < FLOOD_RSS_MB


def test_a_60_mib_body_of_junk_is_bounded_too(emu: RunningEmulator) -> None:
    result = in_child(emu, "huge_line=60", stream=False)
    assert result["outcome"].startswith("StreamInterrupted: ") and "not valid JSON" in result["outcome"]
    assert result["seconds"] < FLOOD_SECONDS
    assert result["rss_mb"] < FLOOD_RSS_MB


def test_a_200_mib_error_body_is_not_read_whole(emu: RunningEmulator) -> None:
    result = in_child(emu, "huge_error_body=200,status=400", stream=True)
    assert result["outcome"].startswith("InvalidRequestError: ")
    assert len(result["outcome"]) < 2000 and "\n" not in result["outcome"]
    assert result["seconds"] < FLOOD_SECONDS
    assert result["rss_mb"] < FLOOD_RSS_MB


def test_a_huge_5xx_body_is_cut_and_the_request_retried(emu: RunningEmulator) -> None:
    result = in_child(emu, "huge_error_body=200", stream=True)
    assert result["outcome"].startswith("complete: ")
    assert result["seconds"] < FLOOD_SECONDS and result["rss_mb"] < FLOOD_RSS_MB


# ---------------------------------------------------------------------------------- the decoder's bounds


class SmallDecoder(SSEDecoder):
    max_line = 1024
    max_event = 4096


class RoomyDecoder(SSEDecoder):
    max_line = 64 * 1024 * 1024


def test_an_endless_line_overflows_at_the_bound() -> None:
    decoder = SmallDecoder()
    assert decoder.feed(b"data: " + b"x" * 500) == []
    with pytest.raises(SSEOverflow, match="line longer than 1,024 bytes"):
        decoder.feed(b"x" * 600)


def test_a_line_inside_the_bound_still_decodes_after_many_pieces() -> None:
    decoder = SmallDecoder()
    decoder.feed(b"data: ")
    for _ in range(100):
        assert decoder.feed(b"z" * 9) == []
    events = decoder.feed(b"\n\n")
    assert [event.data for event in events] == ["z" * 900]


def test_a_many_line_event_overflows_at_the_bound() -> None:
    decoder = SmallDecoder()
    with pytest.raises(SSEOverflow, match="event larger than 4,096 bytes"):
        for _ in range(100):
            decoder.feed(b"data: " + b"w" * 100 + b"\n")


def test_joining_an_endless_line_is_linear() -> None:
    """48 MiB in 4 KiB pieces: joined once at the end (a quadratic join would copy ~300 GB)."""
    decoder = RoomyDecoder()
    piece = b"q" * 4096
    decoder.feed(b"data: ")
    started = time.monotonic()
    for _ in range(48 * 256):
        decoder.feed(piece)
    events = decoder.feed(b"\n\n")
    assert time.monotonic() - started < 10.0
    assert len(events[0].data) == 48 * 1024 * 1024


# ------------------------------------------------------------------------------------ depth-safe parsing


class DeepErrorServer:
    """Answers every connection with a 400 whose JSON body is nested 50,000 deep; stops by itself."""

    def __init__(self, answers: int = 3, *, timeout: float = 20.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.port = self.sock.getsockname()[1]
        self.answers = answers
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        body = b"[" * 50_000 + b"]" * 50_000
        head = (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for _ in range(self.answers):
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(5)
                    received = b""
                    while b"\r\n\r\n" not in received:
                        received += conn.recv(65536)
                    conn.sendall(head + body)
        except OSError:
            pass
        finally:
            self.sock.close()


def test_an_over_deep_error_body_is_one_line() -> None:
    server = DeepErrorServer(answers=1)
    session = Session(settings=Settings.build(base_url=f"http://127.0.0.1:{server.port}", api_key=KEY))
    with pytest.raises(InvalidRequestError) as caught:
        session.ask("hello")
    assert len(caught.value._render_traceback_()) == 1
    server.thread.join(5)


def test_an_over_deep_stream_chunk_is_skipped_and_counted(emu: RunningEmulator) -> None:
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY))
    emu.config.faults.append("deep_json=50000")
    reply = session.ask("Name three primes")
    assert reply.content and reply.warnings == ["1 malformed stream chunk(s) were skipped"]


def test_an_over_deep_body_keeps_an_empty_partial(emu: RunningEmulator) -> None:
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY))
    emu.config.faults.append("deep_json=50000")
    with pytest.raises(DeepSeekError, match="nested too deeply"):
        session.ask("Name three primes", key="k", stream=False)
    assert session.turn("k") is not None and session.turn("k").status == "partial"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------- session files


def test_an_oversized_session_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:  # sparse: no disk or memory is spent on it
        handle.truncate(MAX_SESSION_FILE_BYTES + 1)
    started = time.monotonic()
    with pytest.raises(SessionFileError, match=r"above the .* limit"):
        Session.load(path, settings=Settings.build())
    assert time.monotonic() - started < 5.0


def saved(tmp_path: Path, emu: RunningEmulator) -> str:
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY))
    session.ask("Name three primes", key="a")
    return session.save(tmp_path / "good.json").read_text()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"prompt_tokens": ', '"prompt_tokens": NaN, "x": '),
        ('"created": ', '"created": Infinity, "y": '),
        ('"prompt_tokens": ', '"prompt_tokens": 99999999999999999999, "z": '),
        ('"completion_tokens": ', '"completion_tokens": -5, "w": '),
    ],
)
def test_session_files_with_absurd_numbers_are_refused(
    tmp_path: Path, emu: RunningEmulator, old: str, new: str
) -> None:
    text = saved(tmp_path, emu)
    assert old in text
    path = tmp_path / "bad.json"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SessionFileError):
        Session.load(path, settings=Settings.build())


def test_a_deeply_nested_session_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"version": 1, "turns": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SessionFileError, match="nested too deeply"):
        Session.load(path, settings=Settings.build())
