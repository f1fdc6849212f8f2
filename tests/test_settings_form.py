"""The settings form, headless: frontend messages are simulated on a recording comm.

Every message the kernel would publish is recorded, so "the key never leaves
the kernel" is checked on the wire, the way a saved notebook or nbclient's
``store_widget_state`` would see it (jupyter-engineering.md §5.2, §6).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from comms import record_comms
from ipywidgets.widgets import widget as widget_module

from deepseek_magic.client import ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import AuthenticationError, ConfigError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.ui.settings_form import SettingsForm, describe_balance

EMULATOR_KEY = "sk-emulator-5f3a9c1e7b2d4f60"
SECRET = "sk-secret-0123456789abcdef42"
MASKED = "sk-…42"  # how the form shows SECRET: first three characters, an ellipsis, the last two
#: Loopback port 9 (discard): nothing listens, so a request fails at once and never leaves the machine.
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Widgets created in the test open RecordingComms; yields the shared message log."""
    log: list[tuple[str, Any]] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append((kind, data)))
    yield log


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=EMULATOR_KEY)) as emu:
        yield emu


def frontend_sets(widget: Any, **state: Any) -> None:
    """What the browser sends when the user edits a widget."""
    data = {"method": "update", "state": state, "buffer_paths": []}
    widget.comm.handle_msg({"content": {"data": data}, "buffers": []})


def frontend_clicks(button: Any) -> None:
    data = {"method": "custom", "content": {"event": "click"}}
    button.comm.handle_msg({"content": {"data": data}, "buffers": []})


def descendants(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from descendants(child)


def wire_text(log: list[tuple[str, Any]]) -> str:
    return json.dumps(log, default=str, ensure_ascii=False)


def make_form(**values: Any) -> SettingsForm:
    return SettingsForm(Settings.build(**values), ChatClient())


# ------------------------------------------------------------------------ the key


def test_submitted_key_moves_into_settings_and_the_field_is_cleared(messages: list[tuple[str, Any]]) -> None:
    form = make_form()
    frontend_sets(form.api_key, value=SECRET)

    assert form.api_key.value == ""
    assert form.settings.resolved_api_key() == SECRET
    assert form.key_status.value == f"key set ({MASKED})"
    # The kernel told the frontend to clear the field, and echoed nothing back.
    key_updates = [data["state"] for kind, data in messages if kind == "comm_msg" and "value" in data.get("state", {})]
    assert {"value": ""} in key_updates
    assert not any(data.get("method") == "echo_update" for kind, data in messages if kind == "comm_msg")
    assert SECRET not in wire_text(messages)


def test_the_key_is_in_no_repr_state_or_message(messages: list[tuple[str, Any]]) -> None:
    form = make_form(base_url=CLOSED_PORT, max_retries=0)
    frontend_sets(form.api_key, value=SECRET)
    form.set_key(SECRET)  # the programmatic path too
    frontend_clicks(form.refresh_button)  # fails (nothing listens there), and must not print the key either
    assert form.connection.value.startswith("✗ could not reach")

    assert SECRET not in repr(form)
    assert SECRET not in repr(form.widget)
    assert SECRET not in form._repr_mimebundle_()["text/plain"]
    assert SECRET not in form.widget._repr_mimebundle_()["text/plain"]
    for widget in descendants(form.widget):
        assert SECRET not in json.dumps(widget.get_state(), default=str)
    for widget in list(widget_module._instances.values()):  # every live widget, not only the form's
        assert SECRET not in json.dumps(widget.get_state(), default=str)
    assert SECRET not in wire_text(messages)
    assert SECRET not in repr(form.settings) and SECRET not in str(form.settings.public_dict())


def test_key_from_environment_is_shown_masked(monkeypatch: pytest.MonkeyPatch, messages: list[Any]) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", SECRET)
    form = make_form()
    assert form.key_status.value == f"key from DEEPSEEK_API_KEY ({MASKED})"
    assert form.clear_key_button.disabled  # nothing set in the form to forget
    assert SECRET not in wire_text(messages)


def test_forget_key_and_provider_switch_drop_the_key(messages: list[tuple[str, Any]]) -> None:
    form = make_form()
    form.set_key(SECRET)
    assert not form.clear_key_button.disabled
    frontend_clicks(form.clear_key_button)
    assert form.settings.api_key is None
    assert form.key_status.value.startswith("no key")

    form.set_key(SECRET)
    frontend_sets(form.provider, index=form.provider.options.index("evolink"))
    assert form.settings.provider == "evolink"
    assert form.settings.api_key is None  # a DeepSeek key is never sent to a reseller
    assert "EVOLINK_API_KEY" in form.key_status.value


# -------------------------------------------------------------- changes and errors


def test_changes_write_the_shared_settings_object(messages: list[tuple[str, Any]]) -> None:
    settings = Settings.build()
    form = SettingsForm(settings, ChatClient())
    frontend_sets(form.model, value="deepseek-v4-pro")
    frontend_sets(form.thinking, index=list(form.thinking.options).index("off"))
    frontend_sets(form.temperature_set, value=True)
    frontend_sets(form.temperature, value=0.3)
    frontend_sets(form.max_tokens_set, value=True)
    frontend_sets(form.max_tokens, value=2048)
    frontend_sets(form.json_mode, value=True)
    frontend_sets(form.stream, value=False)
    frontend_sets(form.base_url, value="http://127.0.0.1:9/")

    assert form.settings is settings
    assert settings.model == "deepseek-v4-pro"
    assert settings.thinking is False
    assert settings.temperature == pytest.approx(0.3)
    assert settings.max_tokens == 2048
    assert settings.json_mode is True and settings.stream is False
    assert settings.base_url == "http://127.0.0.1:9"
    assert form.status.value.startswith("✓")

    frontend_sets(form.temperature_set, value=False)
    assert settings.temperature is None  # unchecked: not sent, the provider decides


def test_cache_choice_is_the_settings_cache_switch(messages: list[tuple[str, Any]]) -> None:
    form = make_form()
    before = form.settings.model_dump()
    assert form.settings.cache is True and form.cache.value is True
    frontend_sets(form.cache, value=False)
    assert form.settings.cache is False
    assert form.settings.model_dump() == {**before, "cache": False}, "only the cache switch changed"
    form.settings.update(cache=True)
    assert form.cache.value is True, "the form follows a change made elsewhere"


@pytest.mark.parametrize(
    ("field", "bad", "words"),
    [
        ("base_url", "ftp://example.com", "base_url must be an http(s) URL"),
        ("base_url", "http://example.com/v1", "plain http to a non-loopback host"),
        ("model", "   ", "model must not be empty"),
    ],
)
def test_a_refused_change_is_reported_and_reverted(
    messages: list[tuple[str, Any]], field: str, bad: str, words: str
) -> None:
    form = make_form(base_url="https://api.example.com", model="deepseek-v4-pro")
    before = form.settings.model_dump()
    widget = getattr(form, field)
    shown = widget.value

    frontend_sets(widget, value=bad)

    assert words in form.status.value
    assert form.status.value.startswith("✗") and "\n" not in form.status.value
    assert widget.value == shown  # the widget shows what is in force again
    assert form.settings.model_dump() == before  # all or nothing
    last = [data["state"] for kind, data in messages if kind == "comm_msg" and data.get("method") == "update"]
    assert {"value": shown} in last  # and the frontend was told


def test_refresh_shows_changes_made_elsewhere(messages: list[tuple[str, Any]]) -> None:
    form = make_form()
    form.settings.update(model="deepseek-v4-pro", effort="max", top_p=0.5)
    form.refresh()
    assert form.model.value == "deepseek-v4-pro"
    assert form.effort.value == "max"
    assert form.top_p_set.value is True and form.top_p.value == pytest.approx(0.5)


# ------------------------------------------------------------------------ greying


def test_greying_follows_the_thinking_mode(messages: list[tuple[str, Any]]) -> None:
    form = make_form()
    # Default (None) is thinking on for V4: sampling ignored, effort used.
    assert form.thinking.value == "default"
    assert form.temperature.disabled and form.temperature_set.disabled
    assert form.top_p.disabled and form.top_p_set.disabled
    assert not form.effort.disabled

    frontend_sets(form.thinking, index=list(form.thinking.options).index("off"))
    assert form.effort.disabled
    assert not form.temperature_set.disabled and not form.top_p_set.disabled
    assert form.temperature.disabled  # still unchecked: nothing to slide
    frontend_sets(form.temperature_set, value=True)
    assert not form.temperature.disabled

    frontend_sets(form.thinking, index=list(form.thinking.options).index("on"))
    assert form.temperature.disabled and form.temperature_set.disabled
    assert form.top_p.disabled
    assert not form.effort.disabled
    assert not form.max_tokens_set.disabled  # max_tokens counts in every mode


# ----------------------------------------------------------------- test connection


def test_connection_lists_models_and_balance(emulator: Any, messages: list[tuple[str, Any]]) -> None:
    form = make_form(base_url=emulator.base_url)
    form.model.options = ("something-else",)
    frontend_sets(form.api_key, value=EMULATOR_KEY)
    frontend_clicks(form.test_button)

    text = form.connection.value
    assert "✓ connected" in text
    assert "deepseek-v4-flash" in text and "deepseek-v4-pro" in text
    assert "balance: 100.00 USD (available)" in text
    assert {"deepseek-v4-flash", "deepseek-v4-pro"} <= set(form.model.options)
    assert not form.test_button.disabled
    paths = [request.path for request in emulator.requests[-2:]]
    assert paths == ["/models", "/user/balance"]
    assert EMULATOR_KEY not in wire_text(messages)


def test_connection_with_a_wrong_key_shows_the_401(emulator: Any, messages: list[tuple[str, Any]]) -> None:
    wrong = "sk-wrong-key-00000000000077"
    form = make_form(base_url=emulator.base_url)
    frontend_sets(form.api_key, value=wrong)
    summary = form.test_connection()

    assert "Authentication failed" in summary and "HTTP 401" in summary
    assert "****0077" in summary  # the server's own masking, passed through
    assert wrong not in summary and wrong not in form.connection.value
    assert "\n" not in summary  # one line: no traceback
    assert wrong not in wire_text(messages)


def test_refresh_models_offers_what_the_provider_lists(emulator: Any, messages: list[tuple[str, Any]]) -> None:
    form = make_form(base_url=emulator.base_url, api_key=EMULATOR_KEY, model="my-own-model")
    frontend_clicks(form.refresh_button)
    assert form.model.options == ("deepseek-v4-flash", "deepseek-v4-pro", "my-own-model")
    assert "2 models" in form.connection.value


class StubClient:
    """A client whose provider has a model list but no balance endpoint (like the resellers)."""

    def __init__(self, models_error: Exception | None = None) -> None:
        self.models_error = models_error

    def models(self, settings: Settings) -> list[str]:
        if self.models_error is not None:
            raise self.models_error
        return ["deepseek-v4-flash"]

    def balance(self, settings: Settings) -> Any:
        raise ConfigError("Anyfast has no balance endpoint")


def test_connection_says_when_there_is_no_balance_endpoint(messages: list[tuple[str, Any]]) -> None:
    form = SettingsForm(Settings.build(provider="anyfast"), StubClient())  # type: ignore[arg-type]
    summary = form.test_connection()
    assert summary.splitlines() == [
        "✓ connected · 1 models: deepseek-v4-flash",
        "balance: Anyfast has no balance endpoint",
    ]


def test_connection_errors_are_escaped_and_redacted(messages: list[tuple[str, Any]]) -> None:
    error = AuthenticationError(f"<b>bad</b> key {SECRET}", status_code=401)
    form = SettingsForm(Settings.build(api_key=SECRET), StubClient(error))  # type: ignore[arg-type]
    summary = form.test_connection()
    assert SECRET not in summary and MASKED in summary
    assert "<b>" not in form.connection.value and "&lt;b&gt;" in form.connection.value


def test_describe_balance() -> None:
    body = {"is_available": False, "balance_infos": [{"currency": "CNY", "total_balance": "1.50"}]}
    assert describe_balance(body) == "1.50 CNY (not available for API calls)"
    assert describe_balance("odd\nbody") == "odd body"
