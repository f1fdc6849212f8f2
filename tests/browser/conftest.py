"""Real-browser tests: the ``browser`` marker, skip-or-fail when the browser stack is missing, and the shared lab.

Outside CI a missing piece (Debian's ``chromium``, the ``playwright`` package,
``jupyterlab``) skips these tests with the reason; with ``CI`` set it fails
them, so CI cannot go green by silently skipping.

Every browser test gets the ``lab`` fixture: one emulator and one JupyterLab
per test process (per pytest-xdist worker that runs browser tests), instead of
one per test: starting and stopping JupyterLab costs several seconds. Each
test starts from the emulator's default settings and a server with no kernels
and no saved workspace, copies its notebook into the server's root under its
own name, and sets the pacing it needs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING

import pytest
from browser.lab import CHROMIUM, EMULATOR_KEY, LabServer, jupyter_lab

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

if TYPE_CHECKING:
    from deepseek_magic.emulator.server import RunningEmulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in Debian's chromium through Playwright (no browser download)"
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_browser_stack() -> list[str]:
    """What is missing to run the browser tests, as readable reasons (empty when all is there)."""
    missing = []
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does this)")
    if find_spec("playwright") is None:
        missing.append('the playwright package is missing (pip install -e ".[test]"; never `playwright install`)')
    if find_spec("jupyterlab") is None:
        missing.append('jupyterlab is missing (pip install -e ".[test]")')
    return missing


def require_browser_stack() -> None:
    """Skip (or fail, when ``CI`` is set) unless chromium, playwright and jupyterlab are all installed."""
    missing = missing_browser_stack()
    if not missing:
        return
    reason = "browser test cannot run: " + "; ".join(missing)
    if in_ci():
        pytest.fail(reason + " (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser_stack() -> None:
    """For tests that start their own JupyterLab: skip (or fail in CI) without the browser stack."""
    require_browser_stack()


@dataclass
class Lab:
    """The shared emulator and the JupyterLab whose kernels talk to it."""

    emulator: RunningEmulator
    server: LabServer


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_browser_stack()
    base = tmp_path_factory.mktemp("jupyterlab")
    with run_in_thread(EmulatorConfig(api_key=EMULATOR_KEY)) as emulator, jupyter_lab(base, emulator.base_url) as lab:
        yield Lab(emulator, lab)


@pytest.fixture
def lab(shared_lab: Lab) -> Iterator[Lab]:
    """The shared lab, with the emulator at its default settings; kernels and workspace dropped afterwards."""
    config = shared_lab.emulator.config
    defaults = EmulatorConfig(api_key=EMULATOR_KEY)
    for spec in dataclasses.fields(EmulatorConfig):
        current, default = getattr(config, spec.name), copy.deepcopy(getattr(defaults, spec.name))
        if isinstance(current, list):
            current[:] = default  # the live lists (faults, scripted) stay the same objects
        else:
            setattr(config, spec.name, default)
    try:
        yield shared_lab
    finally:
        shared_lab.server.shut_down_kernels()
        shared_lab.server.forget_workspaces()
