"""Shared test configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from shell import TestingShell, make_shell


@pytest.fixture(scope="session", autouse=True)
def _private_reply_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole run (kernels included) caches replies in a temporary folder, never in ~/.cache."""
    folder = tmp_path_factory.mktemp("reply-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPSEEK_MAGIC_CACHE_DIR", str(folder))
        yield


@pytest.fixture(autouse=True)
def _fresh_reply_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with an empty reply cache of its own."""
    monkeypatch.setenv("DEEPSEEK_MAGIC_CACHE_DIR", str(tmp_path / "reply-cache"))


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider with a developer's real key."""
    for name in (
        "DEEPSEEK_API_KEY",
        "ANYFAST_API_KEY",
        "EVOLINK_API_KEY",
        "RUNWARE_API_KEY",
        "DEEPSEEK_BASE_URL",
        "ANYFAST_BASE_URL",
        "EVOLINK_BASE_URL",
        "RUNWARE_BASE_URL",
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
