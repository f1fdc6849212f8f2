"""``python -m deepseek_magic.emulator`` starts, prints its URL first, serves, and stops on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from deepseek_magic.emulator.cli import build_parser

REPO = Path(__file__).resolve().parents[2]


def start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "deepseek_magic.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_module_serves_and_stops(stop: signal.Signals) -> None:
    process = start("--tps", "0", "--ttft", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"DeepSeek emulator \(emulated replies\) listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        headers = {"Authorization": "Bearer sk-emulator"}
        assert httpx.get(f"{url}/models", headers=headers, timeout=10).json()["data"][0]["id"] == "deepseek-v4-flash"
        reply = httpx.post(
            f"{url}/chat/completions",
            headers=headers,
            json={"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert reply.json()["choices"][0]["message"]["content"].startswith("[emulated]")
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0, "the signal stops the server cleanly (the timeout only guards a hang)"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_cli_scripted_fault_and_bad_spec() -> None:
    process = start("--tps", "0", "--ttft", "0", "--fault", "status=503", "--api-key", "")
    try:
        assert process.stdout is not None
        url = process.stdout.readline().rsplit(" ", 1)[1].strip()
        body = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{url}/chat/completions", json=body, timeout=10).status_code == 503
        assert httpx.post(f"{url}/chat/completions", json=body, timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault", "status=999"])


def test_cli_defaults_pace_like_the_real_service() -> None:
    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1" and args.tps > 0 and args.ttft > 0
