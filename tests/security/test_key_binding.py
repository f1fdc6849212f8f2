"""Canary keys: refused when malformed, never held by an object a traceback can reach, bound to their provider.

Each test uses a random canary and looks for it (whole, and its first and
last eight random characters) wherever it could surface: cell output under
every ``%xmode``, exception text, widget messages, the form's status, batch
results, pickles, the emulator's banner, and which server received it.
"""

from __future__ import annotations

import gc
import json
import pickle
import secrets
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import httpx
import IPython
import pandas as pd
import pytest
from comms import record_comms
from IPython.core import ultratb
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from pydantic import SecretStr
from shell import TestingShell

from deepseek_magic.client import ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import ConfigError, DeepSeekError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.ui.settings_form import SettingsForm

MODES = ("Plain", "Context", "Verbose", "Minimal")


def canary() -> str:
    return f"sk-canary-{secrets.token_hex(12)}"


def needles(key: str) -> tuple[str, ...]:
    body = key.strip()[len("sk-canary-") :]
    return (key.strip(), body[:8], body[-8:])


def assert_clean(text: str, key: str, what: str) -> None:
    found = [needle for needle in needles(key) if needle and needle in text]
    assert not found, f"the canary leaked into {what}: …{text[max(text.find(found[0]) - 120, 0) :][:240]}…"


#: Malformed forms of a key: a .env saved with CRLF, a pasted newline, a space, a tab, non-ASCII, an escape.
def malformed(key: str) -> dict[str, str]:
    return {
        "trailing CR": key + "\r",
        "trailing LF": key + "\n",
        "inner space": key[:12] + " " + key[12:],
        "tab": "\t" + key,
        "non-ASCII": key[:-1] + "é",
        "escape": key + "\x1b",
    }


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=None)) as emu:
        yield emu


def chats(emulator: Any) -> int:
    return sum(1 for r in emulator.requests if r.method == "POST")


@pytest.fixture
def ip(testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    if "deepseek_magic" in testing_shell.extension_manager.loaded:
        testing_shell.run_line_magic("unload_ext", "deepseek_magic")
    testing_shell.user_ns.clear()
    testing_shell.init_user_ns()
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    yield testing_shell
    testing_shell.run_line_magic("xmode", "Context")
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")


def shown_by_ipython(ip: TestingShell, source: str) -> str:
    """What IPython prints for the cell, error included (the base ``run_cell``: printed, not raised)."""
    with capture_output() as captured:
        InteractiveShell.run_cell(ip, source)
    return captured.stdout + captured.stderr


# ------------------------------------------------------------------- malformed keys, every %xmode


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(malformed("sk-x")))
def test_a_malformed_key_is_refused_in_one_line_under_every_xmode(
    ip: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch, mode: str, kind: str
) -> None:
    key = canary()
    monkeypatch.setenv("DEEPSEEK_API_KEY", malformed(key)[kind])
    ip.run_line_magic("xmode", mode)
    before = chats(emulator)
    text = shown_by_ipython(ip, "%%deepseek --view text --no-cache\nHello")
    assert chats(emulator) == before, "nothing was sent"
    assert "DEEPSEEK_API_KEY contains whitespace, a control character or a non-ASCII character" in text
    assert len(text.strip().splitlines()) <= 2, text
    assert "Illegal header" not in text and "could not reach" not in text
    assert_clean(text, key, f"a {mode} error for a key with a {kind}")


@pytest.mark.parametrize("kind", list(malformed("sk-x")))
def test_a_malformed_key_is_refused_when_settings_load(kind: str) -> None:
    key = canary()
    for provider, variable in (("deepseek", "DEEPSEEK_API_KEY"), ("evolink", "EVOLINK_API_KEY")):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env({"DEEPSEEK_PROVIDER": provider, variable: malformed(key)[kind]})
        assert variable in str(raised.value)
        assert_clean(str(raised.value) + repr(raised.value), key, "the refusal")
    with pytest.raises(ConfigError) as explicit:
        Settings.build(api_key=malformed(key)[kind])
    assert str(explicit.value).startswith("api_key contains whitespace")
    assert_clean(str(explicit.value), key, "the refusal of an explicit key")


def test_the_form_names_a_malformed_key_variable_and_test_connection_does_not_echo_it(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[Any] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append(data))
    key = canary()
    monkeypatch.setenv("DEEPSEEK_API_KEY", key + "\r")
    form = SettingsForm(Settings.build(base_url=emulator.base_url), ChatClient())
    before = chats(emulator)
    result = form.test_connection()
    assert "DEEPSEEK_API_KEY" in form.key_status.value and "DEEPSEEK_API_KEY" in result
    assert chats(emulator) == before
    form.set_key(key[:-1] + "é")  # a non-ASCII key typed into the form
    assert form.status.value.startswith("✗ api_key contains")
    texts = [result, form.status.value, form.key_status.value, repr(form), form.summary(), json.dumps(log, default=str)]
    assert_clean("\n".join(texts), key, "the settings form (status lines and widget messages)")


def test_batch_refuses_a_malformed_key_before_any_row(
    ip: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = canary()
    monkeypatch.setenv("DEEPSEEK_API_KEY", key + "\r")
    ip.user_ns["rows"] = pd.DataFrame({"text": ["a", "b"]})
    before = chats(emulator)
    text = shown_by_ipython(ip, "%%deepseek --over rows --out result --no-cache\nSay {text}")
    assert chats(emulator) == before and "result" not in ip.user_ns
    assert "DEEPSEEK_API_KEY contains" in text
    assert_clean(text, key, "a refused batch")


# --------------------------------------------------------- tracebacks: nothing a frame can reach holds the key


def plain_formatter(mode: str) -> ultratb.AutoFormattedTB:
    if IPython.version_info >= (9,):
        return ultratb.AutoFormattedTB(mode=mode, theme_name="nocolor")
    return ultratb.AutoFormattedTB(mode=mode, color_scheme="NoColor")  # pragma: no cover - IPython 8


def strings_reachable(root: Any, depth: int = 4) -> Iterator[str]:
    """Every string reachable from ``root`` through attributes, slots, mappings and sequences.

    A ``SecretStr`` is opaque (its repr and str are masked; stack_data never
    evaluates its private field, no source line names it); everything else is
    walked, the way stack_data's attribute evaluation could reach it.
    """
    seen: set[int] = set()
    stack = [(root, 0)]
    while stack:
        value, level = stack.pop()
        if id(value) in seen or isinstance(value, (SecretStr, types.ModuleType, type)):
            continue
        seen.add(id(value))
        if isinstance(value, str):
            yield value
            continue
        if isinstance(value, bytes):
            yield value.decode("latin-1")
            continue
        if level >= depth:
            continue
        children: list[Any] = []
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = list(value)
        elif isinstance(value, httpx.Headers):
            children = [item for pair in value.raw for item in pair]
        else:
            children = list(getattr(value, "__dict__", {}).values())
            for slot in getattr(type(value), "__slots__", ()):
                children.append(getattr(value, slot, None))
        stack.extend((child, level + 1) for child in children)


class Failing(httpx.BaseTransport):
    """Something breaking while the request is on its way (after the auth step set the header)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("transport broke")


def failure(settings: Settings, prompt: str, transport: httpx.BaseTransport | None = None) -> BaseException:
    """The exception of one ask; this frame (the traceback's first) holds no key either."""
    session = Session(settings=settings, client=ChatClient(transport=transport))
    try:
        session.ask(prompt)
    except BaseException as exc:
        return exc
    raise AssertionError("no failure")


def keyed_settings(source: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, str]:
    """Settings whose key is in the environment, or set explicitly (as the form does)."""
    key = canary()
    base = {"base_url": "http://127.0.0.1:9", "max_retries": 0}
    if source == "environment":
        monkeypatch.setenv("DEEPSEEK_API_KEY", key)
        return Settings.build(**base), key
    return Settings.build(api_key=key, **base), key


CASES = [
    ("environment", "lone surrogate in the prompt"),
    ("environment", "transport failure after the auth step"),
    ("explicit", "lone surrogate in the prompt"),
    ("explicit", "transport failure after the auth step"),
]


def hostile(case: str) -> tuple[str, httpx.BaseTransport | None]:
    return ("file \udc80name.csv", None) if case.startswith("lone") else ("hello", Failing())


@pytest.mark.parametrize(("source", "case"), CASES)
def test_no_traceback_frame_reaches_the_key(source: str, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, key = keyed_settings(source, monkeypatch)
    exc = failure(settings, *hostile(case))
    del settings
    traceback = exc.__traceback__
    frames = 0
    while traceback is not None:
        frames += 1
        for name, value in traceback.tb_frame.f_locals.items():
            for text in strings_reachable(value):
                assert_clean(text, key, f"{traceback.tb_frame.f_code.co_name}() local {name!r}")
        traceback = traceback.tb_next
    assert frames >= 3
    for mode in MODES:
        text = str(plain_formatter(mode).text(type(exc), exc, exc.__traceback__))
        assert_clean(text, key, f"a {mode} traceback ({case}, key from the {source})")
    gc.collect()


def test_verbose_shows_frame_variables_yet_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, key = keyed_settings("environment", monkeypatch)
    exc = failure(settings, "hello", Failing())
    text = str(plain_formatter("Verbose").text(type(exc), exc, exc.__traceback__))
    assert "prepared" in text and "ProviderAuth" in text, "Verbose does show the frames' objects"
    assert_clean(text, key, "a Verbose traceback")


# ----------------------------------------------------------------------------------------- pickling


def test_pickled_settings_and_sessions_drop_the_key() -> None:
    key = canary()
    settings = Settings.build(api_key=key, model="deepseek-v4-pro")
    data = pickle.dumps(settings)
    assert_clean(data.decode("latin-1"), key, "a pickled Settings")
    restored = pickle.loads(data)
    assert restored.api_key is None and restored.model == "deepseek-v4-pro"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == key, "the original keeps it"
    session = Session(settings=settings)
    session_data = pickle.dumps(session)
    assert_clean(session_data.decode("latin-1"), key, "a pickled Session")


# ------------------------------------------------------------------------ key-like values in other fields


@pytest.mark.parametrize("field", ["base_url", "model", "user_id", "stop"])
def test_config_refuses_a_key_in_another_field_without_echo(
    ip: TestingShell, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    key = canary()
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-emulator")
    with capture_output() as captured, pytest.raises((UsageError, DeepSeekError)) as raised:
        ip.run_line_magic("deepseek", f"config {field}={key}")
    assert "looks like an API key" in str(raised.value)
    assert_clean(str(raised.value) + captured.stdout + captured.stderr, key, f"%deepseek config {field}=")
    shown = shown_by_ipython(ip, "%deepseek config")
    assert_clean(shown, key, "%deepseek config after the refusal")


def test_the_form_refuses_a_key_pasted_into_base_url_or_model(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[Any] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append(data))
    key = canary()
    form = SettingsForm(Settings.build(base_url=emulator.base_url), ChatClient())
    for widget in (form.base_url, form.model):
        before = widget.value
        widget.value = key
        assert "looks like an API key" in form.status.value
        assert widget.value == before, "the field is put back, so widget state does not keep the key"
        assert_clean(form.status.value, key, "the form's status")
    final_values = [d.get("state", {}).get("value") for d in log if isinstance(d, dict)]
    assert final_values and final_values[-1] != key
    assert_clean(form.summary() + repr(form.settings), key, "the form's summary")


# ------------------------------------------------------------------------------- key bound to provider


def test_deepseek_base_url_applies_to_deepseek_alone() -> None:
    env = {"DEEPSEEK_BASE_URL": "http://127.0.0.1:7", "ANYFAST_BASE_URL": "http://127.0.0.1:8/anyfast/v1"}
    deepseek = Settings.from_env(env)
    assert deepseek.base_url == "http://127.0.0.1:7"
    assert Settings.from_env({**env, "DEEPSEEK_PROVIDER": "anyfast"}).base_url == "http://127.0.0.1:8/anyfast/v1"
    assert Settings.from_env({**env, "DEEPSEEK_PROVIDER": "evolink"}).base_url is None
    switched = Settings.build(base_url="http://127.0.0.1:7", api_key="sk-deepseek-only")
    assert switched.merged(provider="evolink").base_url is None
    assert switched.merged(provider="evolink").api_key is None
    switched.update(provider="runware")
    assert switched.base_url is None and switched.api_key is None


def test_each_key_reaches_only_its_own_providers_server(ip: TestingShell, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {name: canary() for name in ("deepseek", "anyfast", "evolink")}
    with (
        run_in_thread(EmulatorConfig(api_key=keys["deepseek"])) as deepseek,
        run_in_thread(EmulatorConfig(api_key=None)) as reseller,
    ):
        monkeypatch.setenv("DEEPSEEK_BASE_URL", deepseek.base_url)
        monkeypatch.setenv("DEEPSEEK_API_KEY", keys["deepseek"])
        for name in ("anyfast", "evolink"):
            monkeypatch.setenv(f"{name.upper()}_API_KEY", keys[name])
            monkeypatch.setenv(f"{name.upper()}_BASE_URL", f"{reseller.base_url}/{name}/v1")
        seen: dict[str, list[str]] = {"deepseek": [], "reseller": []}
        for server, label in ((deepseek, "deepseek"), (reseller, "reseller")):
            original = server.app.state.emulator.record

            def record(request: Any, body: Any, original: Any = original, label: str = label) -> None:
                seen[label].append(request.headers.get("authorization", ""))
                original(request, body)

            monkeypatch.setattr(server.app.state.emulator, "record", record)
        with capture_output():
            ip.run_cell("%%deepseek --view text --no-cache\nHello DeepSeek")
            ip.run_cell("%%deepseek --view text --no-cache --provider anyfast\nHello Anyfast")
            ip.run_cell("%%deepseek --view text --no-cache --provider evolink\nHello Evolink")
        assert seen["deepseek"] == [f"Bearer {keys['deepseek']}"]
        assert sorted(seen["reseller"]) == sorted([f"Bearer {keys['anyfast']}", f"Bearer {keys['evolink']}"])
    with capture_output() as captured:
        monkeypatch.delenv("ANYFAST_BASE_URL")
        ip.run_cell("%%deepseek --provider anyfast --dry-run\nWhere would this go?")
    shown = captured.outputs[-1].data["text/plain"]
    assert deepseek.base_url not in shown and "anyfast" in shown.lower()


# ------------------------------------------------------------------------------------ the emulator


def test_the_emulator_banner_masks_its_key() -> None:
    key = canary()
    process = subprocess.Popen(
        [sys.executable, "-m", "deepseek_magic.emulator", "--port", "0", "--api-key", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = "".join(process.stdout.readline() for _ in range(3))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "listening on http://127.0.0.1:" in banner and "ANYFAST_BASE_URL" in banner
    assert_clean(banner, key, "the emulator's banner")


def test_the_settings_form_still_opens_to_replace_a_refused_key(
    ip: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = canary()
    monkeypatch.setenv("DEEPSEEK_API_KEY", key + "\r")
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "settings")
    form = ip.magics_manager.registry["DeepSeekMagics"].last_form
    assert "DEEPSEEK_API_KEY contains" in form.key_status.value
    form.set_key("sk-emulator-good-key")
    shown = shown_by_ipython(ip, "%%deepseek --view text --no-cache\nHello")
    assert "[emulated]" in shown, "the key typed into the form is used"
    assert_clean(shown + str(captured.outputs) + form.key_status.value, key, "the form and the cell after it")
