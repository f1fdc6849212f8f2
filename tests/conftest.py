"""Shared test configuration."""

from __future__ import annotations

import pytest


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
