"""The provider registry: entry points, the built-ins, the public OpenAICompatible helper, one list everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepseek_magic import providers
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.providers import ModelInfo, OpenAICompatible, catalog, get_provider, provider_names, register

REPO = Path(__file__).resolve().parents[1]
BUILTINS = ["deepseek", "anyfast", "evolink", "runware"]


@pytest.fixture
def clean_registry() -> Iterator[None]:
    yield
    providers._registered.clear()
    providers.refresh()


def test_the_builtins_come_from_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    declared = {ep.name: ep.value for ep in entry_points(group=providers.GROUP)}
    assert set(BUILTINS) <= set(declared), "pyproject declares the built-ins like any plugin"
    assert declared == {**declared, **{k: v for k, v in providers._BUILTIN.items() if k in declared}}
    assert provider_names()[:4] == BUILTINS


def test_a_checkout_without_entry_points_still_finds_the_builtins() -> None:
    code = (
        "import importlib.metadata as md\n"
        "md.entry_points = lambda **kw: []\n"
        "from deepseek_magic.providers import get_provider, provider_names\n"
        "print(provider_names(), get_provider('evolink').key_variable)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "['deepseek', 'anyfast', 'evolink', 'runware'] EVOLINK_API_KEY"


def test_each_provider_owns_its_variables_models_and_limits() -> None:
    deepseek = get_provider("deepseek")
    assert (deepseek.key_variable, deepseek.base_url_variable) == ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL")
    flash, pro = deepseek.models
    assert flash.name == "deepseek-flash" and "deepseek-v4-flash" in flash.aliases and flash.vision
    assert (flash.concurrency, pro.concurrency) == (2500, 500)
    assert flash.context_window == pro.context_window == 1_000_000 and not pro.vision
    assert [m.name for m in get_provider("anyfast").models] == ["deepseek-v4-flash", "deepseek-v4-pro"]
    assert get_provider("runware").option_limits["max_tokens"] == (1, 100_000)
    for name in BUILTINS:
        provider = get_provider(name)
        settings = Settings.build(provider=name)
        assert (
            settings.key_variable == provider.key_variable and settings.base_url_variable == provider.base_url_variable
        )


def test_settings_accept_any_registered_name_and_refuse_others(clean_registry: None) -> None:
    with pytest.raises(ConfigError, match=r"^provider: unknown provider 'acme'; choose one of: deepseek, anyfast"):
        Settings.build(provider="acme")
    register(OpenAICompatible(name="acme", base_url="https://acme.example/v1", key_variable="ACME_KEY", models=["m1"]))
    settings = Settings.build(provider="acme")
    assert settings.key_variable == "ACME_KEY" and settings.base_url_variable == "ACME_BASE_URL"
    assert "acme" in provider_names() and "`acme`" in catalog.markdown_table()


def test_openai_compatible_refuses_bad_declarations_in_one_line() -> None:
    with pytest.raises(ConfigError, match="needs a key_variable"):
        OpenAICompatible(name="x", base_url="https://x.example", key_variable="", models=["m"])
    with pytest.raises(ConfigError, match="at least one model"):
        OpenAICompatible(name="x", base_url="https://x.example", key_variable="X_KEY", models=[])
    with pytest.raises(ConfigError, match="lowercase"):
        OpenAICompatible(name="Bad Name", base_url="https://x.example", key_variable="X_KEY", models=["m"])


def test_a_registered_provider_gets_its_own_key_and_limits(clean_registry: None, monkeypatch: Any) -> None:
    with run_in_thread(EmulatorConfig(api_key="sk-acme-key-123")) as emu:
        register(
            OpenAICompatible(
                name="acme",
                base_url=emu.base_url,
                key_variable="ACME_KEY",
                models=[ModelInfo("deepseek-v4-pro")],
                display_name="Acme",
                option_limits={"max_tokens": (1, 50)},
            )
        )
        monkeypatch.setenv("ACME_KEY", "sk-acme-key-123")
        monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-deepseek-must-not-travel")
        session = Session(provider="acme", model="deepseek-v4-pro", thinking=False)
        with pytest.raises(ConfigError, match="max_tokens must be between 1 and 50 with Acme"):
            session.ask("hello", max_tokens=51)
        assert not emu.requests, "refused before anything was sent"
        reply = session.ask("hello")  # the emulator answers 401 to any other key
        assert reply.content
        (request,) = emu.requests
        assert request.body["model"] == "deepseek-v4-pro" and "authorization" not in request.headers
        monkeypatch.delenv("ACME_KEY")
        with pytest.raises(Exception, match="ACME_KEY") as info:
            Session(provider="acme", thinking=False).ask("hello")
        assert "sk-deepseek" not in str(info.value)
        assert len(emu.requests) == 1, "without its own key nothing is sent (DeepSeek's key never travels)"


def test_no_other_module_writes_the_provider_or_effort_list() -> None:
    offenders = []
    for path in (REPO / "deepseek_magic").rglob("*.py"):
        if "emulator" in path.parts or path.name in ("anyfast.py", "evolink.py", "limits.py"):
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r'"anyfast",\s*"evolink"|[\[(]\s*"low",\s*"medium"', text):  # a list, not a mapping
            offenders.append(path.name)
    assert offenders == []


def test_the_readme_table_is_the_registry() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- provider-table -->\n(.*?)\n<!-- /provider-table -->", readme, re.S)
    assert found is not None, "README.md lost its provider-table markers"
    assert found.group(1) == catalog.markdown_table(), "regenerate the README table from catalog.markdown_table()"


def test_help_lists_the_registry() -> None:
    text = catalog.plain_text()
    for name in BUILTINS:
        provider = get_provider(name)
        assert provider.key_variable in text and provider.base_url_variable in text


def test_a_provider_switch_carries_the_model_over_by_name() -> None:
    flash = Settings.build(provider="deepseek", model="deepseek-flash")
    assert flash.merged(provider="anyfast").model == "deepseek-v4-flash", "DeepSeek's new name → the resellers' name"
    assert flash.merged(provider="runware").model == "deepseek-v4-flash"
    pro = Settings.build(provider="anyfast", model="deepseek-v4-pro")
    assert pro.merged(provider="deepseek").model == "deepseek-v4-pro"
    custom = Settings.build(provider="deepseek", model="my-fine-tune")
    assert custom.merged(provider="evolink").model == "my-fine-tune", "a name no provider lists is left alone"
    assert flash.merged(provider="anyfast", model="deepseek-v4-pro").model == "deepseek-v4-pro", (
        "an explicit model wins"
    )
