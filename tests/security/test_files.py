"""``%deepseek save``/``load`` write only regular files, never block on a FIFO, and keep symlinks."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from shell import TestingShell, loaded_magics

from deepseek_magic.conversation.session import Session
from deepseek_magic.core.files import FileKindError

KEY = "sk-emulator"


@pytest.fixture
def ip(testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    with loaded_magics(testing_shell, emulator.base_url, KEY, monkeypatch) as shell:
        with capture_output():
            shell.run_cell("%%deepseek --view text\nRemember this turn.")
        yield shell


def refused(ip: TestingShell, line: str) -> str:
    with pytest.raises((UsageError, FileKindError)) as raised:
        ip.run_line_magic("deepseek", line)
    text = str(raised.value)
    render = getattr(raised.value, "_render_traceback_", None)
    assert render is None or len(render()) == 1, "one line in IPython"
    return text


def test_save_refuses_a_fifo_without_replacing_or_blocking(ip: TestingShell, tmp_path: Path) -> None:
    (tmp_path / "pipes").mkdir()
    fifo = tmp_path / "pipes" / "pipe"
    os.mkfifo(fifo)
    assert "is a FIFO (named pipe), not a regular file; nothing was written" in refused(ip, f"save {fifo}")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO is still a FIFO"
    assert [p.name for p in fifo.parent.iterdir()] == ["pipe"], "no temporary file left behind"


def test_load_refuses_a_fifo_at_once(ip: TestingShell, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    finished = threading.Event()
    outcome: list[str] = []

    def load() -> None:
        try:
            Session.load(fifo)
        except FileKindError as exc:
            outcome.append(str(exc))
        finally:
            finished.set()

    threading.Thread(target=load, daemon=True).start()
    if not finished.wait(5):
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # unblock the reader so the thread ends
        pytest.fail("loading a FIFO blocked")
    assert outcome and "is a FIFO (named pipe), not a regular file; nothing was loaded" in outcome[0]
    assert "is a FIFO" in refused(ip, f"load {fifo}")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_devices_are_refused_both_ways(ip: TestingShell, device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    before = os.stat(device)
    assert "is a character device" in refused(ip, f"save {device}")
    assert "is a character device" in refused(ip, f"load {device}")
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_directory_is_refused_both_ways(ip: TestingShell, tmp_path: Path) -> None:
    assert "is a directory" in refused(ip, f"save {tmp_path}")
    assert "is a directory" in refused(ip, f"load {tmp_path}")


def test_saving_through_a_symlink_updates_the_target_and_keeps_the_link(ip: TestingShell, tmp_path: Path) -> None:
    target = tmp_path / "real" / "session.json"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with capture_output():
        ip.run_line_magic("deepseek", f"save {link}")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"turns"' in target.read_text(), "the target got the session"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640, "an existing file keeps its mode"
    assert sorted(p.name for p in target.parent.iterdir()) == ["session.json"]
    with capture_output() as captured:
        ip.run_line_magic("deepseek", f"load {link}")
    assert "loaded: 1 turns" in captured.stdout


def test_a_dangling_symlink_gets_its_target_created(ip: TestingShell, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    with capture_output():
        ip.run_line_magic("deepseek", f"save {link}")
    assert link.is_symlink() and (tmp_path / "new.json").is_file()
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o600, "a new session file is private"


def test_an_unwritable_place_is_one_line(ip: TestingShell, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("x")
    text = refused(ip, f"save {blocked}/inside.json")  # a path through a regular file
    assert text.startswith(f"could not save to {blocked}/inside.json")
