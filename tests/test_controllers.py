"""Views only render: the form's and the chat's network work lives in deepseek_magic.conversation.controllers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic.client import ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.controllers import AccountController, ChatController
from deepseek_magic.conversation.session import Session

UI = Path(__file__).resolve().parents[1] / "deepseek_magic" / "ui"
KEY = "sk-emulator"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("path", sorted(UI.glob("*.py")), ids=lambda p: p.name)
def test_no_view_imports_the_client_or_httpx(path: Path) -> None:
    forbidden = {"..client", "deepseek_magic.client", "httpx"}
    assert not imported_modules(path) & forbidden
    text = path.read_text(encoding="utf-8")
    assert ".models(self.settings)" not in text and ".balance(self.settings)" not in text


def test_the_account_controller_reports_models_and_balance(emulator: Any) -> None:
    settings = Settings.build(base_url=emulator.base_url, api_key=KEY)
    with ChatClient() as client:
        report = AccountController(settings, client).test_connection()
        models = AccountController(settings, client).fetch_models()
    assert report.models is not None and "deepseek-v4-pro" in report.models
    assert report.lines[0].startswith("✓ connected") and report.lines[1] == "balance: 100.00 USD (available)"
    assert models.models == report.models and models.lines[0].startswith(f"✓ {len(report.models)} models")


def test_a_failed_check_is_one_line_without_the_key(emulator: Any) -> None:
    wrong = "sk-wrong-key-0123456789"
    settings = Settings.build(base_url=emulator.base_url, api_key=wrong)
    with ChatClient() as client:
        report = AccountController(settings, client).test_connection()
    assert report.models is None and len(report.lines) == 1 and report.lines[0].startswith("✗")
    assert wrong not in report.text


def test_the_chat_controller_sends_through_the_shared_session(emulator: Any) -> None:
    session = Session(settings=Settings.build(base_url=emulator.base_url, api_key=KEY))
    reply = ChatController(session).send("hello", key="chat-1")
    assert reply.content.startswith("[emulated]") and session.turn("chat-1") is not None
