"""Shared test configuration, and the order in which pytest-xdist hands out the test files.

``pyproject.toml`` runs the suite on one pytest-xdist worker per core with ``--dist loadfile``: a test file is
one unit of work, so its module-scoped kernels, emulators and clusters start once, in one worker (session-scoped
servers, such as the browser tests' JupyterLab, start once per worker that needs them). The files holding a test
marked ``slow`` are handed out first (``--no-loadscope-reorder`` keeps this order), so the run does not end with
one worker busy on a long file while the other is idle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shell import TestingShell, loaded_magics, make_shell

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

#: The key the shared emulator accepts (a module that needs another emulator defines its own ``emulator``).
EMULATOR_KEY = "sk-emulator"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding a ``slow`` test first, each file's tests still together and in their order."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session", autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole run (kernels included) caches replies in a temporary folder, never in ~/.cache.

    Kernels started by tests also get a temporary IPython directory and Jupyter runtime directory: their
    history database and connection files stay out of ``~/.ipython`` and ``~/.local/share/jupyter``, and two
    pytest-xdist workers (each with its own temporary folders) never share a history database.
    """
    folder = tmp_path_factory.mktemp("reply-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPSEEK_MAGIC_CACHE_DIR", str(folder))
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path_factory.mktemp("jupyter-runtime")))
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


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    """The bundled emulator on 127.0.0.1, one per test module, accepting :data:`EMULATOR_KEY`."""
    with run_in_thread(EmulatorConfig(api_key=EMULATOR_KEY)) as emu:
        yield emu


@pytest.fixture
def ip(testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    """The testing shell with the magics loaded and pointed at this module's emulator."""
    with loaded_magics(testing_shell, emulator.base_url, EMULATOR_KEY, monkeypatch) as shell:
        yield shell
