"""The README's main command: `deepseek-magic lab` starts the emulator when no key is set, then JupyterLab."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deepseek_magic.cli import EMULATOR_KEY, emulator_environment, needs_emulator
from deepseek_magic.providers import get_provider

REPO = Path(__file__).resolve().parents[1]


def test_needs_emulator_follows_the_provider_key() -> None:
    assert needs_emulator({})
    assert not needs_emulator({"DEEPSEEK_API_KEY": "sk-x"})
    assert needs_emulator({"DEEPSEEK_PROVIDER": "anyfast", "DEEPSEEK_API_KEY": "sk-x"})
    assert not needs_emulator({"DEEPSEEK_PROVIDER": "anyfast", "ANYFAST_API_KEY": "k"})


def test_the_demo_points_every_provider_at_the_emulator_through_its_own_variables() -> None:
    env = emulator_environment("http://127.0.0.1:5")
    for name in ("deepseek", "anyfast", "evolink", "runware"):
        provider = get_provider(name)
        assert env[provider.base_url_variable].startswith("http://127.0.0.1:5"), name
        assert env[provider.key_variable] == EMULATOR_KEY
    assert env["ANYFAST_BASE_URL"].endswith("/anyfast/v1") and env["EVOLINK_BASE_URL"].endswith("/evolink/v1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jupyter") is None, reason="JupyterLab is installed by the lab and test extras")
def test_lab_starts_the_emulator_and_jupyterlab_on_the_demo_notebook(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    command = [sys.executable, "-m", "deepseek_magic.cli", "lab", "--no-browser", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "local emulator at http://127.0.0.1:" in first, first
        emulator_url = first.split("emulator at ")[1].split()[0]
        models = httpx.get(f"{emulator_url}/models", headers={"Authorization": "Bearer sk-emulator"}, timeout=10)
        assert models.status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
