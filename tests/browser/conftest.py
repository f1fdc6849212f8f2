"""Real-browser tests: the ``browser`` marker, and skip-or-fail when the browser stack is missing.

Outside CI a missing piece (Debian's ``chromium``, the ``playwright`` package,
``jupyterlab``) skips these tests with the reason; with ``CI`` set it fails
them, so CI cannot go green by silently skipping.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import pytest

#: Debian's chromium; Playwright's own browser builds are never downloaded.
CHROMIUM = Path("/usr/bin/chromium")


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


@pytest.fixture
def browser_stack() -> None:
    """Skip (or fail, when ``CI`` is set) unless chromium, playwright and jupyterlab are all installed."""
    missing = missing_browser_stack()
    if not missing:
        return
    reason = "browser test cannot run: " + "; ".join(missing)
    if in_ci():
        pytest.fail(reason + " (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)
