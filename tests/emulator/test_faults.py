"""Fault injection, pacing and concurrency, observed from the client side over real HTTP.

Timing assertions are lower bounds only (a delay did happen, with slack); where an
upper bound was meant, the test counts or orders events instead, so a busy
two-core CI machine cannot make them flaky. Speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import pytest

from deepseek_magic.emulator import EmulatorConfig, parse_fault

STATUSES = [
    (400, "Failed to deserialize the JSON body", "invalid_request_error"),
    (401, "Authentication Fails, Your api key: ****ator is invalid", "authentication_error"),
    (402, "Insufficient Balance", "unknown_error"),
    (429, "which exceeds your concurrency limit", "rate_limit_error"),
    (500, "Server Error", "server_error"),
    (502, "Bad Gateway", "server_error"),
    (503, "Server Overloaded", "server_error"),
]


@pytest.mark.parametrize(("status", "message", "type_"), STATUSES)
def test_status_fault_by_header(wire: Any, status: int, message: str, type_: str) -> None:
    response = wire.post(wire.body("hi"), **{"X-Emulator-Fault": f"status={status},retry_after=3"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error == {"message": error["message"], "type": type_, "param": None, "code": "invalid_request_error"}
    assert message in error["message"]
    assert response.headers["retry-after"] == "3"


def test_status_fault_on_a_stream_request_is_a_plain_error(wire: Any) -> None:
    result = wire.stream(wire.body("hi"), **{"X-Emulator-Fault": "status=503"})
    assert result.status == 503
    assert json.loads(result.lines[0])["error"]["message"] == "Server Overloaded"


def test_no_retry_after_unless_asked(wire: Any) -> None:
    assert "retry-after" not in wire.post(wire.body("hi"), **{"X-Emulator-Fault": "status=500"}).headers


def test_scripted_faults_apply_in_order_and_header_wins(make_wire: Any) -> None:
    config = EmulatorConfig(faults=["status=503", "", "status=500,retry_after=1"])
    wire = make_wire(config)
    assert wire.post(wire.body("a")).status_code == 503
    assert wire.post(wire.body("b")).status_code == 200
    response = wire.post(wire.body("c"), **{"X-Emulator-Fault": "status=402"})
    assert response.status_code == 402 and "retry-after" not in response.headers
    assert wire.post(wire.body("d")).status_code == 200
    config.faults.append("status=502")  # appended at runtime
    assert wire.post(wire.body("e")).status_code == 502
    assert config.faults == []
    # Non-chat routes never consume scripted faults.
    config.faults.append("status=500")
    assert wire.http.get("/models").status_code == 200
    assert wire.post(wire.body("f")).status_code == 500


def test_invalid_fault_spec_is_reported(wire: Any) -> None:
    response = wire.post(wire.body("x"), **{"X-Emulator-Fault": "explode=1"})
    assert response.status_code == 400
    assert "X-Emulator-Fault" in response.json()["error"]["message"]
    for spec in ("status=418", "stall=-1", "drop_after=1.5", "status"):
        with pytest.raises(ValueError):
            parse_fault(spec)


def test_drop_after_aborts_the_stream_after_exactly_n_chunks(wire: Any) -> None:
    result = wire.stream(wire.body("tell me a story"), **{"X-Emulator-Fault": "drop_after=3"})
    assert result.status == 200
    assert isinstance(result.error, httpx.RemoteProtocolError)
    assert len(result.data) == 3 and "[DONE]" not in result.data
    # The connection is gone, but the server is fine.
    assert wire.post(wire.body("again")).status_code == 200


def test_drop_after_beyond_the_end_still_omits_done(wire: Any) -> None:
    full = wire.stream(wire.body("short", max_tokens=2))
    result = wire.stream(wire.body("short", max_tokens=2), **{"X-Emulator-Fault": "drop_after=999"})
    assert result.error is not None
    assert [json.loads(d)["choices"] for d in result.data] == [json.loads(d)["choices"] for d in full.data[:-1]]


def test_drop_after_on_a_non_stream_request_cuts_the_body(wire: Any) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        wire.post(wire.body("hello"), **{"X-Emulator-Fault": "drop_after=20"})


def test_stall_delays_the_first_chunk_after_headers(wire: Any) -> None:
    result = wire.stream(wire.body("hi"), **{"X-Emulator-Fault": "stall=1.5"})
    # The silence lies between the headers and the first chunk (not before the headers).
    assert result.first_data_at() - result.headers_at >= 1.4
    assert result.data[-1] == "[DONE]"


def test_stall_after_n_chunks(wire: Any) -> None:
    result = wire.stream(wire.body("hi"), **{"X-Emulator-Fault": "stall=1.2,stall_after=4"})
    data_times = [t for line, t in zip(result.lines, result.times, strict=True) if line.startswith("data: ")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(data_times)]
    assert gaps[3] >= 1.1
    assert max(range(len(gaps)), key=gaps.__getitem__) == 3, "the one long silence comes after the 4th chunk"


def test_malformed_line_then_the_stream_continues(wire: Any) -> None:
    clean = wire.stream(wire.body("hi")).data
    result = wire.stream(wire.body("hi"), **{"X-Emulator-Fault": "malformed_after=2"})
    assert len(result.data) == len(clean) + 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.data[2])
    rest = [json.loads(d)["choices"] for i, d in enumerate(result.data) if i != 2 and d != "[DONE]"]
    assert rest == [json.loads(d)["choices"] for d in clean if d != "[DONE]"]
    assert result.data[-1] == "[DONE]"


def test_keepalive_flood_count(wire: Any) -> None:
    result = wire.stream(wire.body("hi"), **{"X-Emulator-Fault": "keepalive=25"})
    first = next(i for i, line in enumerate(result.lines) if line.startswith("data: "))
    assert result.lines[:first] == [": keep-alive"] * 25
    assert ": keep-alive" not in result.lines[first:]


def test_keepalive_flood_on_non_stream_is_blank_lines(wire: Any) -> None:
    response = wire.post(wire.body("hi"), **{"X-Emulator-Fault": "keepalive=5"})
    assert response.content.startswith(b"\n" * 5 + b"{")
    assert response.json()["object"] == "chat.completion"


def test_trickle_paces_every_chunk(wire: Any) -> None:
    result = wire.stream(wire.body("hi", max_tokens=8), **{"X-Emulator-Fault": "trickle=0.05"})
    chunks = len(result.chunks)
    assert chunks == 10  # role chunk + 8 tokens + final chunk
    assert result.times[-1] >= 0.05 * (chunks - 1) * 0.9


def test_ttft_sends_keepalive_comments_while_waiting(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(ttft=0.45, keepalive_interval=0.1))
    result = wire.stream(wire.body("hi", max_tokens=3))
    first = next(i for i, line in enumerate(result.lines) if line.startswith("data: "))
    # One comment per 0.1 s of a 0.45 s wait: at least one, and never more than five however busy the machine.
    assert 1 <= first <= 5 and set(result.lines[:first]) == {": keep-alive"}
    assert ": keep-alive" not in result.lines[first:]
    assert result.first_data_at() >= 0.4


def test_tps_paces_tokens(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(tps=100))
    start = time.monotonic()
    result = wire.stream(wire.body("hi", max_tokens=30))
    assert len(result.chunks) == 32
    assert time.monotonic() - start >= 31 / 100 * 0.9


def test_non_stream_wait_sends_blank_lines(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(ttft=0.35, keepalive_interval=0.1))
    response = wire.post(wire.body("hi", max_tokens=3))
    assert response.content.startswith(b"\n\n") and response.json()["object"] == "chat.completion"


def test_concurrency_limit_answers_429(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(max_concurrency=1))
    state = wire.emu.app.state.emulator  # the server's own count of requests in flight
    body = {**wire.body("slow"), "stream": True}
    request = wire.http.build_request("POST", "/chat/completions", json=body, headers={"X-Emulator-Fault": "stall=60"})
    first = wire.http.send(request, stream=True)  # headers arrive, then the stream stalls: it stays in flight
    try:
        assert first.status_code == 200 and state.in_flight == 1
        response = wire.post(wire.body("second"))
        assert response.status_code == 429
        assert (
            "Your current concurrency is 2, which exceeds your concurrency limit of 1"
            in response.json()["error"]["message"]
        )
    finally:
        first.close()
    wait_until(lambda: state.in_flight == 0, "the closed stream to leave the server's count")
    assert wire.post(wire.body("third")).status_code == 200


def test_shutdown_aborts_a_stalled_stream() -> None:
    from deepseek_magic.emulator import run_in_thread

    with run_in_thread(EmulatorConfig()) as emu:
        client = httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer sk-emulator"}, timeout=30)
        body = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "x"}], "stream": True}
        response = client.send(
            client.build_request("POST", "/chat/completions", json=body, headers={"X-Emulator-Fault": "stall=60"}),
            stream=True,
        )
        assert response.status_code == 200
        state = emu.app.state.emulator
    # Leaving the block returned although a 60 s stall was still pending: the server stopped waiting it out.
    assert state.closing.is_set()
    lines: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        lines.extend(response.iter_lines())
    assert not any(line.startswith("data: ") for line in lines), "the stalled stream never sent its chunks"
    with pytest.raises(httpx.ConnectError):
        client.post("/chat/completions", json=body)
    response.close()
    client.close()


def wait_until(condition: Any, what: str, limit: float = 10.0) -> None:
    """Poll ``condition`` (a guard against hanging, not a speed check)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"waited {limit} s for {what}"
        time.sleep(0.01)
