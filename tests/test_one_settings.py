"""One Settings object behind every surface: whichever sets a value, every other reads it back.

Surfaces that write: ``%config DeepSeekMagics.*``, ``%deepseek config KEY=VALUE``, the settings form (as the
browser edits it), and the Python API (``session.settings``). Surfaces that read: the traits, ``%deepseek
config``'s table, the form's widgets, the chat widget's session, and a cell (the body the emulator received).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from IPython.utils.capture import capture_output
from shell import TestingShell
from traitlets import TraitError

from deepseek_magic.ipython.magics import DeepSeekMagics

KEY = "sk-emulator"


def magics(ip: TestingShell) -> DeepSeekMagics:
    found = ip.magics_manager.registry["DeepSeekMagics"]
    assert isinstance(found, DeepSeekMagics)
    return found


def frontend_sets(widget: Any, **state: Any) -> None:
    data = {"method": "update", "state": state, "buffer_paths": []}
    widget.comm.handle_msg({"content": {"data": data}, "buffers": []})


def open_form(ip: TestingShell) -> Any:
    with capture_output():
        ip.run_line_magic("deepseek", "settings")
    return magics(ip).last_form


def open_chat(ip: TestingShell) -> Any:
    with capture_output():
        ip.run_line_magic("deepseek", "chat")
    return magics(ip).last_chat


# ----------------------------------------------------------------- the writers


def via_config_trait(ip: TestingShell, name: str, value: Any) -> None:
    ip.run_cell(f"%config DeepSeekMagics.{name} = {value!r}")


def via_deepseek_config(ip: TestingShell, name: str, value: Any) -> None:
    with capture_output():
        ip.run_line_magic("deepseek", f"config {name}={value}")


def via_form(ip: TestingShell, name: str, value: Any) -> None:
    form = open_form(ip)
    if name == "effort":  # a dropdown's browser side sends the index of the choice
        frontend_sets(form.effort, index=list(form.effort.options).index(value))
    else:
        frontend_sets({"model": form.model, "cache": form.cache}[name], value=value)


def via_python(ip: TestingShell, name: str, value: Any) -> None:
    setattr(magics(ip).get_session().settings, name, value)


def via_new_session(ip: TestingShell, name: str, value: Any) -> None:
    ip.run_cell(f"from deepseek_magic import Session\nSession().settings.{name} = {value!r}")


WRITERS: dict[str, Callable[[TestingShell, str, Any], None]] = {
    "%config": via_config_trait,
    "%deepseek config": via_deepseek_config,
    "form": via_form,
    "session.settings": via_python,
    "Session()": via_new_session,
}


def sent_body(ip: TestingShell, emulator: Any) -> dict[str, Any]:
    before = len(emulator.requests)
    with capture_output():
        ip.run_cell("%%deepseek --no-cache\nhello")
    chats = [r for r in emulator.requests[before:] if r.path.endswith("/chat/completions")]
    assert len(chats) == 1
    body: dict[str, Any] = chats[0].body
    return body


def config_row(ip: TestingShell, name: str) -> str:
    """The plain-text row ``%deepseek config`` shows for ``name``."""
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "config")
    plain = "".join(output.data.get("text/plain", "") for output in captured.outputs)
    rows = [line for line in plain.splitlines() if line.split() and line.split()[0] == name]
    assert len(rows) == 1, plain
    return rows[0]


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize(("name", "value"), [("model", "deepseek-v4-pro"), ("effort", "low")])
def test_a_value_set_anywhere_is_read_back_everywhere(
    ip: TestingShell, emulator: Any, writer: str, name: str, value: str
) -> None:
    form = open_form(ip)  # opened before the change: it must follow it
    chat = open_chat(ip)
    WRITERS[writer](ip, name, value)

    assert getattr(magics(ip), name) == value, "the %config trait"
    assert config_row(ip, name).split(None, 1)[1].strip() == repr(value), "%deepseek config"
    assert getattr(magics(ip).settings, name) == value, "the shared Settings"
    assert getattr(magics(ip).get_session().settings, name) == value, "the session cells use"
    assert getattr(chat.session.settings, name) == value, "the chat"
    ip.run_cell(f"from deepseek_magic import Session\n_read_back = Session().settings.{name}")
    assert ip.user_ns["_read_back"] == value, "a Session() made in the notebook"
    shown = form.model.value if name == "model" else form.effort.value
    assert shown == value, "an open settings form"
    body = sent_body(ip, emulator)
    sent = body["model"] if name == "model" else body.get("reasoning_effort")
    assert sent == value, "the request a cell sends"


def test_the_issue_sequence_sends_the_last_value(ip: TestingShell, emulator: Any) -> None:
    ip.run_cell("%config DeepSeekMagics.model = 'deepseek-v4-pro'")
    with capture_output():
        ip.run_line_magic("deepseek", "config model=deepseek-v4-flash")
    assert sent_body(ip, emulator)["model"] == "deepseek-v4-flash"
    assert magics(ip).model == "deepseek-v4-flash"


@pytest.mark.parametrize("writer", list(WRITERS))
def test_one_cache_switch(ip: TestingShell, emulator: Any, writer: str) -> None:
    form = open_form(ip)
    WRITERS[writer](ip, "cache", False)
    assert magics(ip).cache is False and magics(ip).settings.cache is False and form.cache.value is False
    assert magics(ip).reply_cache() is None
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "cache")
    assert "Reply cache (off)" in captured.stdout
    with capture_output():
        ip.run_cell("%%deepseek\nsame question")
        ip.run_cell("%%deepseek\nsame question")
    assert sum(1 for r in emulator.requests[-2:] if r.path.endswith("/chat/completions")) == 2, "nothing cached"


def test_a_refused_trait_changes_nothing_and_says_why(ip: TestingShell) -> None:
    before = magics(ip).settings.model_dump()
    with pytest.raises(TraitError, match="provider"):
        magics(ip).provider = "no-such-provider"
    assert magics(ip).settings.model_dump() == before and magics(ip).provider == "deepseek"
    with pytest.raises(TraitError, match="temperature must be between 0 and 2"):
        magics(ip).temperature = 7.0
    ip.run_cell("%config DeepSeekMagics.temperature = 7.0")  # IPython's %config logs the same line
    assert magics(ip).temperature is None and magics(ip).settings.temperature is None
    assert magics(ip).settings.model_dump() == before
