"""The faults added for issue #13, seen on the wire with plain httpx: what the emulator really sends.

Each is reachable through the one fault grammar (``X-Emulator-Fault`` here; ``--fault`` and
``EmulatorConfig.faults`` parse the same specs), so the client's handling of them can be tested and shown.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from deepseek_magic.emulator import parse_fault
from deepseek_magic.emulator.server import RunningEmulator

KEY = "sk-emulator"
MIB = 1024 * 1024


def body(stream: bool = True) -> dict[str, Any]:
    return {
        "model": "deepseek-v4-flash",
        "messages": [{"role": "user", "content": "name three primes"}],
        "stream": stream,
    }


def post(emu: RunningEmulator, fault: str, *, stream: bool = True) -> httpx.Response:
    return httpx.post(
        f"{emu.base_url}/chat/completions",
        json=body(stream),
        headers={"Authorization": f"Bearer {KEY}", "X-Emulator-Fault": fault},
        timeout=30,
    )


def data_lines(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


# ------------------------------------------------------------------------------------------------ grammar


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ("done_only=1", "done_only", True),
        ("usage_only=yes", "usage_only", True),
        ("html_200=1", "html_200", True),
        ("redirect=true", "redirect", True),
        ("close_after_request=1", "close_after_request", True),
        ("redirect=0", "redirect", False),
        ("huge_line=60", "huge_line", 60),
        ("deep_json=50000", "deep_json", 50000),
        ("huge_error_body=200", "huge_error_body", 200),
        ("huge_line=999999", "huge_line", 512),  # clamped: no request runs unbounded
        ("deep_json=99999999", "deep_json", 1_000_000),
    ],
)
def test_new_fault_specs_parse(spec: str, field: str, value: Any) -> None:
    assert getattr(parse_fault(spec), field) == value


@pytest.mark.parametrize("spec", ["done_only=maybe", "huge_line=0", "deep_json=-1", "huge_error_body=x"])
def test_bad_new_fault_specs_name_the_item(spec: str) -> None:
    with pytest.raises(ValueError, match=spec.split("=")[0]):
        parse_fault(spec)


# ------------------------------------------------------------------------------------------------ on the wire


def test_done_only_is_a_stream_of_only_done(emu: RunningEmulator) -> None:
    answer = post(emu, "done_only=1")
    assert answer.status_code == 200
    assert data_lines(answer) == ["[DONE]"]


def test_done_only_body_has_no_choices_and_no_usage(emu: RunningEmulator) -> None:
    answer = post(emu, "done_only=1", stream=False).json()
    assert answer["choices"] == [] and "usage" not in answer


def test_usage_only_sends_usage_with_no_choices(emu: RunningEmulator) -> None:
    lines = data_lines(post(emu, "usage_only=1"))
    assert lines[-1] == "[DONE]" and len(lines) == 2
    chunk = json.loads(lines[0])
    assert chunk["choices"] == [] and chunk["usage"]["completion_tokens"] > 0
    whole = post(emu, "usage_only=1", stream=False).json()
    assert whole["choices"] == [] and whole["usage"]["prompt_tokens"] > 0


def test_html_200_is_a_proxy_page(emu: RunningEmulator) -> None:
    answer = post(emu, "html_200=1")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")


def test_redirect_points_elsewhere(emu: RunningEmulator) -> None:
    answer = post(emu, "redirect=1")
    assert answer.status_code == 301
    assert answer.headers["location"].startswith("https://moved.invalid/")


def test_close_after_request_reads_the_request_then_says_nothing(emu: RunningEmulator) -> None:
    before = len(emu.requests)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(emu, "close_after_request=1")
    assert len(emu.requests) == before + 1, "the request was received (and recorded) before the close"
    assert post(emu, "").status_code == 200, "the emulator keeps serving"


def test_huge_line_sends_one_line_without_end_then_drops(emu: RunningEmulator) -> None:
    received = 0
    newline_after_flood = False
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{emu.base_url}/chat/completions",
            json=body(),
            headers={"Authorization": f"Bearer {KEY}", "X-Emulator-Fault": "huge_line=3"},
            timeout=30,
        ) as answer,
    ):
        for piece in answer.iter_bytes():
            if received > 64 * 1024 and b"\n" in piece:
                newline_after_flood = True
            received += len(piece)
    assert received >= 3 * MIB
    assert not newline_after_flood


def test_deep_json_inserts_one_over_deep_chunk_and_carries_on(emu: RunningEmulator) -> None:
    lines = data_lines(post(emu, "deep_json=5000"))
    deep = [line for line in lines if line.startswith("[[[")]
    assert len(deep) == 1 and deep[0] == "[" * 5000 + "]" * 5000
    assert lines[-1] == "[DONE]" and len(lines) > 3
    assert post(emu, "deep_json=5000", stream=False).text == "[" * 5000 + "]" * 5000


def test_huge_error_body_is_an_error_status_with_megabytes(emu: RunningEmulator) -> None:
    received = 0
    with httpx.stream(
        "POST",
        f"{emu.base_url}/chat/completions",
        json=body(),
        headers={"Authorization": f"Bearer {KEY}", "X-Emulator-Fault": "huge_error_body=2,status=502"},
        timeout=30,
    ) as answer:
        assert answer.status_code == 502
        with pytest.raises(httpx.RemoteProtocolError):
            for piece in answer.iter_bytes():
                received += len(piece)
    assert received >= 2 * MIB


def test_the_cli_accepts_every_new_fault() -> None:
    from deepseek_magic.emulator.cli import build_parser

    specs = [
        "done_only=1",
        "usage_only=1",
        "html_200=1",
        "redirect=1",
        "close_after_request=1",
        "huge_line=60",
        "deep_json=50000",
        "huge_error_body=200",
    ]
    arguments = [part for spec in specs for part in ("--fault", spec)]
    assert build_parser().parse_args(arguments).fault == specs
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault", "huge_line=0"])
