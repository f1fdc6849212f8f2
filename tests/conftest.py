"""Shared test configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shell import TestingShell, make_shell


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider with a developer's real key."""
    for name in (
        "DEEPSEEK_API_KEY",
        "ANYFAST_API_KEY",
        "EVOLINK_API_KEY",
        "RUNWARE_API_KEY",
        "DEEPSEEK_BASE_URL",
        "DEEPSEEK_MODEL",
        "DEEPSEEK_PROVIDER",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def testing_shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestingShell]:
    """One real IPython shell for the whole run (IPython keeps it as a singleton)."""
    shell = make_shell(str(tmp_path_factory.mktemp("ipython")))
    yield shell
    TestingShell.clear_instance()
