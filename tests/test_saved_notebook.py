"""Saved notebooks keep the static outputs (settings summary, chat transcript), never live widgets.

The pre-save hook runs inside a real Jupyter server here (its contents API,
a temporary root): a notebook holding a live form saved through the server
comes out with the summary and without the widget. The browser test does
the same through JupyterLab's File menu and reopens it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from comms import Transcript, record_comms

from deepseek_magic.config.settings import Settings
from deepseek_magic.ui.saved import (
    LIVE_MARK,
    WIDGET_VIEW,
    _jupyter_server_extension_points,
    _load_jupyter_server_extension,
    is_live,
    pre_save_hook,
    without_live_widgets,
)
from deepseek_magic.ui.settings_form import SettingsForm

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "jupyter-config" / "jupyter_server_config.d" / "deepseek_magic.json"
INSTALLED_AS = "etc/jupyter/jupyter_server_config.d/deepseek_magic.json"


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    record_comms(monkeypatch, lambda *message: None)
    yield


class NoAccount:
    def models(self, settings: Settings) -> list[str]:
        return []

    def balance(self, settings: Settings) -> Any:
        return None


def shown_form(**values: Any) -> tuple[SettingsForm, Transcript]:
    page = Transcript()
    form = SettingsForm(Settings.build(**values), NoAccount(), display=page)  # type: ignore[arg-type]
    form.show()
    return form, page


def notebook_with(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    cell = nbformat.v4.new_code_cell("%deepseek settings")
    cell.outputs = [nbformat.from_dict(output) for output in outputs]
    return dict(nbformat.v4.new_notebook(cells=[cell]))


def as_outputs(page: Transcript) -> list[dict[str, Any]]:
    return [
        {"output_type": "display_data", "data": data, "metadata": metadata}
        for data, metadata in zip(page.items, page.metadata, strict=True)
    ]


def test_the_form_shows_a_summary_and_a_marked_live_widget(recording: None) -> None:
    form, page = shown_form(model="<img src=x onerror=alert(1)>", api_key="sk-form-secret-7f0e")
    summary, live = page.items
    assert summary["text/plain"] == form.summary() and "key set" in summary["text/plain"]
    assert "<img" not in summary["text/html"] and "&lt;img src=x" in summary["text/html"]
    assert "<img" not in summary["text/markdown"]
    assert live[WIDGET_VIEW]["model_id"] == form.widget.model_id and is_live(as_outputs(page)[1])
    assert "<img" not in live["text/html"] and "VBox" not in live["text/plain"]
    assert "sk-form-secret" not in json.dumps(page.items)


def test_the_hook_drops_live_widgets_and_keeps_everything_else(recording: None) -> None:
    form, page = shown_form()
    other_widget = {"output_type": "display_data", "data": {WIDGET_VIEW: {"model_id": "x"}}, "metadata": {}}
    notebook = notebook_with([*as_outputs(page), other_widget])
    model = {"type": "notebook", "content": notebook}
    pre_save_hook(model, path="demo.ipynb")
    kept = notebook["cells"][0]["outputs"]
    assert [output["data"]["text/plain"] for output in kept[:1]] == [form.summary()]
    assert kept[1] == other_widget, "only outputs this package marked are left out"
    assert len(kept) == 2
    assert without_live_widgets({"cells": "not a list"}) == 0
    pre_save_hook({"type": "file", "content": "text"})  # other files pass through untouched


def test_is_live_reads_only_our_mark() -> None:
    assert is_live({"metadata": {LIVE_MARK: {"live_widget": True}}})
    assert not is_live({"metadata": {LIVE_MARK: {"live_widget": "yes"}}})
    assert not is_live({"metadata": {}}) and not is_live(None)


def test_the_extension_registers_the_hook() -> None:
    registered: list[Any] = []

    class Manager:
        def register_pre_save_hook(self, hook: Any) -> None:
            registered.append(hook)

    class App:
        contents_manager = Manager()

    _load_jupyter_server_extension(App())
    assert registered == [pre_save_hook]
    assert _jupyter_server_extension_points() == [{"module": "deepseek_magic.ui.saved"}]
    assert json.loads(CONFIG.read_text())["ServerApp"]["jpserver_extensions"] == {"deepseek_magic.ui.saved": True}


def test_the_wheel_ships_the_server_config(tmp_path: Path) -> None:
    from hatchling.builders.wheel import WheelBuilder

    wheels = list(WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheels[0]) as wheel:
        shipped = [name for name in wheel.namelist() if name.endswith(f".data/data/{INSTALLED_AS}")]
        assert len(shipped) == 1 and wheel.read(shipped[0]) == CONFIG.read_bytes()


@pytest.mark.skipif(shutil.which("jupyter") is None, reason="jupyter_server comes with the test extra")
def test_a_real_jupyter_server_saves_without_the_live_form(
    recording: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jupyter_server's own contents manager, with the extension enabled by the installed config file."""
    if not (Path(sys.prefix) / INSTALLED_AS).exists():
        pytest.skip(f"not installed in {sys.prefix} (pip install -e . installs it)")
    from jupyter_server.serverapp import ServerApp

    for name in ("CONFIG", "DATA", "RUNTIME"):
        monkeypatch.setenv(f"JUPYTER_{name}_DIR", str(tmp_path / name.lower()))
    app = ServerApp()
    app.initialize(
        argv=[f"--ServerApp.root_dir={tmp_path}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0"],
        new_httpserver=False,  # nothing listens: only the configuration, the extensions and the contents manager
    )
    assert "deepseek_magic.ui.saved" in app.extension_manager.extensions
    form, page = shown_form()
    model = {"type": "notebook", "format": "json", "content": notebook_with(as_outputs(page))}
    saving = app.contents_manager.save(model, "saved.ipynb")
    if inspect.isawaitable(saving):  # jupyter_server 2's default manager is async
        asyncio.run(saving)
    saved = nbformat.read(tmp_path / "saved.ipynb", as_version=4)
    outputs = saved.cells[0].outputs
    assert len(outputs) == 1 and outputs[0].data["text/plain"] == form.summary()
    assert WIDGET_VIEW not in json.dumps(saved)
