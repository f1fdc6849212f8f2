"""A real IPython shell for tests (the jupysql pattern), wired to the emulator.

The shell re-raises cell errors so pytest sees them, keeps no history
database, and lives in a temporary IPYTHONDIR so no developer profile leaks in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


class TestingShell(InteractiveShell):
    """``run_cell`` raises the cell's error instead of only printing it."""

    __test__ = False

    def run_cell(self, raw_cell: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


def make_shell(tmp_dir: str) -> TestingShell:
    config = Config()
    config.HistoryManager.enabled = False
    config.HistoryAccessor.enabled = False
    config.InteractiveShell.colors = "nocolor"  # caseless in IPython 8, lowercase since 9
    shell: TestingShell = TestingShell.instance(config=config, ipython_dir=tmp_dir)
    shell.displayhook.flush = lambda: None  # type: ignore[method-assign]
    return shell


@contextmanager
def loaded_magics(
    shell: TestingShell, base_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestingShell]:
    """The testing shell with a fresh namespace and the extension loaded against ``base_url``; unloaded after.

    ``%config DeepSeekMagics.*`` set by one test is dropped so it never reaches the next one.
    """
    monkeypatch.setenv("DEEPSEEK_BASE_URL", base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", key)
    shell.user_ns.clear()
    shell.init_user_ns()
    shell.run_line_magic("load_ext", "deepseek_magic")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "deepseek_magic")
        shell.config.pop("DeepSeekMagics", None)
