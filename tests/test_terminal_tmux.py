"""Terminal IPython in tmux against the emulator: replies rendered as Markdown, Ctrl-C in one line.

A real ``ipython`` runs in a tmux pane (a private tmux server on a socket in
the test's temporary folder, so no one else's sessions are touched); keys
are typed with ``send-keys`` and the screen is read with ``capture-pane``, as
a person would see it. Outside CI a missing tmux skips the test; with ``CI``
set it fails (``.ci/run`` installs Debian's tmux).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

KEY = "sk-emulator-tmux"
#: Slow enough that the answer is still streaming when Ctrl-C is sent.
TPS = 30.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class Pane:
    """One tmux pane running IPython."""

    socket: Path

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30, check=True
        )
        return result.stdout

    def screen(self) -> str:
        """The pane and its scrollback, as shown (joined wrapped lines)."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "ipython")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "ipython", *keys)

    def wait_for(self, pattern: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.2)
        pytest.fail(f"{pattern!r} did not appear within {timeout:.0f} s; the screen:\n{self.screen()}")

    def cell(self, *lines: str) -> None:
        """Type a cell line by line; a multi-line cell ends with an empty line, as in the terminal."""
        for line in lines:
            self.keys("-l", line)
            self.keys("Enter")
            time.sleep(0.2)
        if len(lines) > 1:  # a cell magic's body ends with two empty lines
            self.keys("Enter")
            time.sleep(0.2)
            self.keys("Enter")


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    if shutil.which("tmux") is None:
        reason = "tmux is missing (apt-get install -y tmux; .ci/run does this)"
        if in_ci():
            pytest.fail(reason + " (CI is set, so this fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
    with run_in_thread(EmulatorConfig(api_key=KEY, tps=TPS, ttft=0.2)) as emu:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DEEPSEEK_", "ANYFAST_", "EVOLINK_"))},
            "DEEPSEEK_BASE_URL": emu.base_url,
            "DEEPSEEK_API_KEY": KEY,
            "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1",
            "DEEPSEEK_MAGIC_CACHE_DIR": str(tmp_path / "cache"),
            "IPYTHONDIR": str(tmp_path / "ipython"),
            "TERM": "xterm-256color",
        }
        pane = Pane(tmp_path / "tmux.sock")
        command = f"{sys.executable} -m IPython --no-banner --colors=NoColor --no-confirm-exit"
        subprocess.run(
            [
                *("tmux", "-S", str(pane.socket), "new-session", "-d", "-s", "ipython", "-x", "120", "-y", "50"),
                *("-c", str(tmp_path)),
                *(f"-e{name}={value}" for name, value in env.items() if "\n" not in value),
                command,
            ],
            check=True,
            timeout=30,
        )
        try:
            pane.wait_for(r"In \[1\]:")
            yield pane
        finally:
            subprocess.run(["tmux", "-S", str(pane.socket), "kill-server"], check=False, timeout=30)


@pytest.mark.slow
def test_markdown_is_rendered_and_ctrl_c_is_one_line(pane: Pane) -> None:
    pane.cell("%load_ext deepseek_magic")
    pane.wait_for(r"In \[2\]:")

    # ---- a reply: Markdown rendered (the emulator's answer has bold, a quote, a list, inline code)
    pane.cell("%%deepseek", "Name three ways to look at a new table")
    screen = pane.wait_for(r"In \[3\]:")
    reply = screen.split("Name three ways to look at a new table", 1)[1]
    assert "Reply from the local DeepSeek emulator: deepseek-flash, thinking on" in reply
    assert "**" not in reply and "`" not in reply, f"raw Markdown on the screen:\n{reply}"
    assert re.search(r"(?m)^▌ Name three ways", reply), "the blockquote is drawn as a quote"
    assert re.search(r"(?m)^ • Key terms: ", reply), "the list is drawn with bullets"
    assert re.search(r"(?m)^-- \d+ prompt \+ \d+ completion [^-]*·\s+stop\s", reply), "the final footer"
    assert "answering…" not in reply, "the live footer is gone once the reply ends"

    # ---- Ctrl-C while the answer streams: one line, the partial reply kept
    pane.cell("%%deepseek --no-cache", "Tell me more about reading large tables")
    pane.wait_for(r"answering… \d+ tokens")
    pane.keys("C-c")
    screen = pane.wait_for(r"In \[4\]:")
    after = screen.split("Tell me more about reading large tables", 1)[1]
    assert "Traceback" not in after and "httpx" not in after and 'File "' not in after, after
    errors = [line for line in after.splitlines() if line.startswith("KeyboardInterrupt")]
    assert len(errors) == 1 and "the partial reply (" in errors[0] and "is kept in session default" in errors[0]
    assert re.search(r"(?m)^-- [^-]*·\s+⏹ interrupted\s", after), "the footer says the reply was interrupted"

    pane.cell("%deepseek history")
    history = pane.wait_for(r"In \[5\]:").split("%deepseek history", 1)[1]
    assert re.search(r"Tell me more about reading large tables\s+-\s+-\s+interrupted", history), history
