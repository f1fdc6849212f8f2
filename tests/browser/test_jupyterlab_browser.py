"""notebooks/quickstart.ipynb in a real JupyterLab, driven by Playwright through Debian's chromium.

JupyterLab runs on 127.0.0.1 (random port and token, temporary config, data,
runtime and root directories, nothing that reaches the network) with its
kernels pointed at the bundled emulator. The test opens a copy of the demo
notebook, runs all cells from the Run menu and checks what a user sees: each
reply's reasoning folded under a "Thought for … tokens" summary, the answer
visible, the settings form rendered, no "Error displaying widget". It re-runs
one question with slow pacing to see the live widget (a folded pane titled
"Thinking… N tokens"), saves, shuts the kernel down, reopens the notebook in a
fresh browser profile without widget state and checks the replies are still
there. Screenshots go to ``test-artifacts/browser/`` (also on failure), with
the server's log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import nbformat
import pytest
from demo_notebooks import pristine_copy

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Playwright

    from deepseek_magic.emulator.server import RunningEmulator

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: Debian's chromium (the same path tests/browser/conftest.py checks); no browser is ever downloaded.
CHROMIUM = Path("/usr/bin/chromium")
EMULATOR_KEY = "sk-emulator"
#: Fast, steady pacing for "Run All": each reply streams for a second or two.
FAST_TPS, TTFT = 400.0, 0.2
#: Slow pacing for the one re-run whose live widget is looked at (reasoning streams for a few seconds).
SLOW_TPS = 25.0
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FIRST_QUESTION = "What are three good ways"
THOUGHT = re.compile(r"Thought for [\d.]+ s · [\d,]+ tokens?")
THINKING = re.compile(r"Thinking… [\d,]+ tokens?")
ERROR_TEXT = "Error displaying widget"
SERVER_START_TIMEOUT = 60.0
KERNEL_TIMEOUT_MS = 60_000
RUN_ALL_TIMEOUT = 90.0


def panel_js(name: str) -> str:
    """The notebook panel of ``name`` in the page (JupyterLab is exposed as ``window.jupyterapp``)."""
    return f"""
const app = window.jupyterapp;
const panel = app && Array.from(app.shell.widgets('main')).find(
  (w) => w.context && w.context.path === {json.dumps(name)} && w.content && w.content.model);
"""


def notebook_state_js(name: str) -> str:
    """Kernel status, executed/running code cells, error outputs, and each code cell's output mime types.

    Errors of cells tagged ``raises-exception`` (the demo's failing cell) are expected and not counted. Cells the
    kernel offered through ``set_next_input`` (``%deepseek fix``, ``--code``: their code starts "# [emulated]")
    are listed apart, with the source of the cell above them, and never counted as code to execute.
    """
    return (
        "() => {"
        + panel_js(name)
        + """
  if (!panel || !panel.context.isReady) return null;
  const session = panel.sessionContext.session;
  const kernel = session && session.kernel;
  const cells = panel.content.model.cells;
  const state = {kernel: kernel ? kernel.status : null, code: 0, executed: 0, errors: [], cells: [],
                 offered: [], dirty: panel.context.model.dirty};
  let above = null;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    const source = cell.sharedModel.getSource();
    if (source.startsWith('# [emulated]') && !cell.executionCount) {
      state.offered.push({above: above, source: source});
      above = source.slice(0, 60);
      continue;
    }
    above = source.slice(0, 60);
    const tags = (typeof cell.getMetadata === 'function' ? cell.getMetadata('tags') : null) || [];
    state.code += 1;
    if (cell.executionCount) state.executed += 1;
    const mimes = [];
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      const expected = tags.includes('raises-exception');
      if (out.output_type === 'error' && !expected) state.errors.push(out.ename + ': ' + out.evalue);
      mimes.push(...Object.keys(out.data || {}));
    }
    state.cells.push({source: cell.sharedModel.getSource().slice(0, 60), mimes: mimes});
  }
  state.running = Array.from(document.querySelectorAll('.jp-InputPrompt'))
    .filter((p) => p.textContent.includes('[*]')).length;
  return state;
}"""
    )


# ------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    name: str = NOTEBOOK.name

    def api(self, method: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10)

    def notebook_url(self) -> str:
        return f"{self.url}/lab/tree/{self.name}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def lab_settings(settings_dir: Path) -> None:
    """User settings: no news or update checks, widget state not saved (JupyterLab's default, made explicit)."""
    write_json(
        settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    write_json(
        settings_dir / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings",
        {"saveState": False},
    )


@contextmanager
def jupyter_lab(base: Path, emulator_url: str, notebook: Path | None = None) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 serving a copy of the demo notebook (or ``notebook``); always shut down at the end.

    Only the user-level Jupyter directories are redirected (config, data,
    runtime): ``{sys.prefix}/share/jupyter`` stays on the data path, so the
    jupyterlab_widgets labextension and the python3 kernelspec are found.
    """
    root, home = base / "root", base / "jupyter"
    root.mkdir()
    if notebook is None:
        pristine_copy(NOTEBOOK, root)
    else:
        shutil.copy(notebook, root)
    settings = home / "user-settings"
    lab_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DEEPSEEK_", "JUPYTER_"))},
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "DEEPSEEK_PROVIDER": "deepseek",
        "DEEPSEEK_BASE_URL": emulator_url,
        "DEEPSEEK_API_KEY": EMULATOR_KEY,
        "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1",
        "PYTHONUNBUFFERED": "1",
        # This interpreter's scripts first: `jupyter lab` dispatches to the first `jupyter-lab` on PATH, and the
        # kernel must import this checkout's deepseek_magic, not another installation's.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root; the server still binds 127.0.0.1 only
    log = base / "jupyterlab-server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=root, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process, log, (notebook or NOTEBOOK).name)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                if server.api("GET", "/api/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}"
                )
            time.sleep(0.25)
        yield server
    finally:
        stop_server(server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "jupyterlab-server.log")


def stop_server(server: LabServer) -> None:
    """Graceful shutdown (kernels included), then SIGTERM, then SIGKILL of the server's own process group."""
    process = server.process
    if process.poll() is None:
        with suppress(httpx.HTTPError):
            server.api("POST", "/api/shutdown")
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Shots:
    """Numbered full-page (or element) screenshots in test-artifacts/browser/."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()
        self.directory = directory
        self.count = 0

    def take(self, page: Page, name: str, element: Locator | None = None) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        if element is not None:
            element.screenshot(path=str(path), timeout=10_000)
        else:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)
        return path

    @contextmanager
    def on_failure(self, page: Page, step: str) -> Iterator[None]:
        """Take a screenshot named after ``step`` if the block fails, then let the failure through."""
        try:
            yield
        except BaseException:
            with suppress(Exception):  # the page may be gone; the original failure matters more
                self.take(page, f"FAILED-{step}")
            raise


def open_browser(playwright: Playwright, profile: Path) -> BrowserContext:
    """Debian's chromium with a fresh profile directory (Playwright passes it as ``--user-data-dir``)."""
    profile.mkdir(parents=True)
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
    context.set_default_timeout(30_000)
    return context


def notebook_state(page: Page, name: str = NOTEBOOK.name) -> dict[str, Any] | None:
    state: dict[str, Any] | None = page.evaluate(notebook_state_js(name))
    return state


def wait_for(
    page: Page,
    what: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
    name: str = NOTEBOOK.name,
) -> dict[str, Any]:
    """Poll the notebook state until ``check`` holds; fail with the last state after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        state = notebook_state(page, name)
        if state is not None:
            if state["errors"]:
                pytest.fail(f"a cell failed while waiting for {what}: {state['errors']}")
            if check(state):
                return state
        page.wait_for_timeout(250)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last notebook state: {state}")


def open_notebook(page: Page, server: LabServer) -> None:
    """Load the notebook and wait until its kernel is idle."""
    page.goto(server.notebook_url(), wait_until="domcontentloaded")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="attached", timeout=KERNEL_TIMEOUT_MS)
    wait_for(page, "the kernel to be idle", lambda s: s["kernel"] == "idle", KERNEL_TIMEOUT_MS / 1000, server.name)


def code_cell(page: Page, text: str) -> Locator:
    """The code cell whose source contains ``text``."""
    return page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text=text)).first


def menu(page: Page, top: str, item: re.Pattern[str]) -> None:
    """Click ``top`` in the main menu bar, then the item whose label matches ``item``."""
    page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=item).first.click()


def assert_no_widget_errors(page: Page, when: str) -> None:
    errors = page.get_by_text(ERROR_TEXT)
    count = errors.count()
    texts = [errors.nth(i).inner_text() for i in range(count)]
    assert count == 0, f"{when}: {count} output(s) say {ERROR_TEXT!r}: {texts}"


def assert_reply_output(cell: Locator, when: str) -> None:
    """The static reply: the "[emulated]" answer visible, the reasoning folded under "Thought for … tokens"."""
    from playwright.sync_api import expect

    output = cell.locator(".jp-OutputArea-output").first
    output.scroll_into_view_if_needed()
    answer = output.get_by_text(re.compile(r"^\[emulated\] \w")).first  # the wording varies with the model name
    expect(answer, f"{when}: the answer text is not visible in the first reply").to_be_visible()
    details = output.locator("details")
    expect(details, f"{when}: expected one <details> reasoning block").to_have_count(1)
    summary = details.locator("summary")
    expect(summary, f"{when}: the reasoning summary should read 'Thought for … tokens'").to_have_text(THOUGHT)
    expect(summary, f"{when}: the reasoning summary is not visible").to_be_visible()
    expect(details, f"{when}: the reasoning block is open").to_have_js_property("open", False)
    expect(cell.locator(".dsm-live"), f"{when}: the live widget is still shown").to_have_count(0)


# ------------------------------------------------------------------ the test


@pytest.fixture
def emulator(browser_stack: None) -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=EMULATOR_KEY, tps=FAST_TPS, ttft=TTFT)) as emu:
        yield emu


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quickstart_in_jupyterlab(emulator: RunningEmulator, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Shots(ARTIFACTS)
    with jupyter_lab(tmp_path, emulator.base_url) as server, sync_playwright() as playwright:
        # ---- run all, look at the replies and the settings form
        context = open_browser(playwright, tmp_path / "profile-1")
        page = context.new_page()
        with shots.on_failure(page, "run-all"):
            open_notebook(page, server)
            shots.take(page, "opened")
            menu(page, "Run", re.compile(r"^Run All Cells$"))
            state = wait_for(
                page,
                "Run All to finish",
                lambda s: s["executed"] == s["code"] and s["running"] == 0 and s["kernel"] == "idle",
                RUN_ALL_TIMEOUT,
            )
            first = code_cell(page, FIRST_QUESTION)
            expect(first.locator(".jp-OutputArea-output details summary")).to_have_text(THOUGHT, timeout=15_000)
            assert_reply_output(first, "after Run All")
            shots.take(page, "first-reply", element=first)
            summaries = page.locator(".jp-OutputArea-output details > summary", has_text=THOUGHT)
            assert summaries.count() >= 3, f"expected at least 3 folded reasoning blocks, found {summaries.count()}"
            opened = page.locator(".jp-OutputArea-output details[open]").count()
            assert opened == 0, f"{opened} reasoning block(s) are open after Run All"
            replies = [c for c in state["cells"] if c["source"].startswith("%%deepseek")]
            assert len(replies) >= 4 and all(WIDGET_VIEW not in c["mimes"] for c in replies), (
                f"reply outputs should be static HTML/Markdown once the replies end: {replies}"
            )
            assert all("text/html" in c["mimes"] for c in replies), f"reply outputs without text/html: {replies}"
            # JupyterLab turned the set_next_input payloads of `%deepseek fix` and `--code` into new cells below
            # them, and nothing ran them.
            offered = {cell["above"]: cell["source"] for cell in state["offered"]}
            assert len(state["offered"]) == 2, f"expected two offered cells: {state['offered']}"
            assert offered["%deepseek fix"].startswith("# [emulated] stand-in fix for ZeroDivisionError")
            code_cell_above = next(above for above in offered if above.startswith("%%deepseek --code"))
            assert offered[code_cell_above].startswith("# [emulated] code for:")
            offered_cell = code_cell(page, "# [emulated] stand-in fix")
            offered_cell.scroll_into_view_if_needed()
            expect(offered_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[ \]:$"))
            shots.take(page, "fix-offered-cell")

            form = code_cell(page, "%deepseek settings")
            form.scroll_into_view_if_needed()
            form_output = form.locator(".jp-OutputArea-output")
            expect(form_output.get_by_role("button", name="Test connection")).to_be_visible(timeout=15_000)
            expect(form_output.locator(".widget-dropdown", has_text="provider").first).to_be_visible()
            expect(form_output.get_by_text("DeepSeek settings", exact=True)).to_be_visible()
            shots.take(page, "settings-form", element=form)
            expect(page.get_by_text("Loading widget...")).to_have_count(0, timeout=15_000)
            assert_no_widget_errors(page, "after Run All")
            shots.take(page, "after-run-all")

        # ---- the live widget: re-run the first question with slow pacing
        with shots.on_failure(page, "live"):
            emulator.config.tps = SLOW_TPS
            try:
                first.scroll_into_view_if_needed()
                first.locator(".jp-InputArea-editor").click()
                # An identical re-run is answered from the reply cache; ask the model again to watch it stream.
                page.keyboard.press("Control+Home")
                page.keyboard.press("End")
                page.keyboard.type(" --no-cache")
                page.keyboard.press("Control+Enter")
                pane = first.locator(".dsm-live .dsm-reasoning").first
                header = pane.locator("summary")
                expect(header).to_have_text(THINKING, timeout=20_000)
                expect(pane, "the live reasoning pane is open while thinking").to_have_js_property("open", False)
                assert not pane.locator("blockquote").is_visible(), (
                    "the live reasoning text is visible although the pane should be folded"
                )
                shots.take(page, "live-thinking", element=first)
                wait_for(page, "the re-run to finish", lambda s: s["running"] == 0 and s["kernel"] == "idle", 60)
            finally:
                emulator.config.tps = FAST_TPS
            expect(first.locator(".dsm-live")).to_have_count(0, timeout=15_000)
            assert_reply_output(first, "after the live re-run")
            assert_no_widget_errors(page, "after the live re-run")

        # ---- close the settings form with Done: it leaves a static summary in its place
        with shots.on_failure(page, "form-done"):
            form = code_cell(page, "%deepseek settings")
            form.scroll_into_view_if_needed()
            form.locator(".jp-OutputArea-output").get_by_role("button", name="Done").click()
            expect(form.locator(".jp-OutputArea-output", has_text="DeepSeek settings: deepseek")).to_be_visible(
                timeout=15_000
            )
            expect(form.get_by_role("button", name="Test connection")).to_have_count(0)
            shots.take(page, "settings-done", element=form)

        # ---- save (File menu), then check the file: static replies, no widget state
        with shots.on_failure(page, "save"):
            menu(page, "File", re.compile(r"^Save( Notebook)?$"))
            wait_for(page, "the notebook to be saved", lambda s: not s["dirty"], 30)
            shots.take(page, "saved")
        context.close()

        saved = nbformat.read(server.root / "quickstart.ipynb", as_version=4)
        assert "widgets" not in saved.metadata, "widget state was saved into the notebook"
        reply_cells = [c for c in saved.cells if c.cell_type == "code" and c.source.startswith("%%deepseek")]
        assert len(reply_cells) >= 4
        for cell in reply_cells:
            mimes = {key for out in cell.outputs for key in out.get("data", {})}
            assert WIDGET_VIEW not in mimes, f"a reply was saved as a widget view: {cell.source[:60]!r}"
            assert {"text/html", "text/markdown"} <= mimes, f"a reply was saved without its static form: {mimes}"
        first_saved = "\n".join(out.get("data", {}).get("text/html", "") for out in reply_cells[0].outputs)
        assert "[emulated]" in first_saved and re.search(r"<details [^>]*><summary [^>]*>Thought for", first_saved)

        # ---- reopen with no kernel-side widgets and no saved widget state
        sessions = server.api("GET", "/api/sessions").json()
        for session in sessions:
            server.api("DELETE", f"/api/sessions/{session['id']}")
        assert server.api("GET", "/api/kernels").json() == [], "the kernel was not shut down"
        context = open_browser(playwright, tmp_path / "profile-2")
        page = context.new_page()
        with shots.on_failure(page, "reopen"):
            open_notebook(page, server)
            first = code_cell(page, FIRST_QUESTION)
            expect(first.locator(".jp-OutputArea-output details summary")).to_have_text(THOUGHT, timeout=15_000)
            assert_reply_output(first, "after reopening")
            shots.take(page, "reopened-first-reply", element=first)
            replies_shown = page.locator(".jp-OutputArea-output", has_text="[emulated]").count()
            assert replies_shown >= 4, f"only {replies_shown} replies are shown after reopening"
            form = code_cell(page, "%deepseek settings")
            form.scroll_into_view_if_needed()
            expect(page.get_by_text("Loading widget...")).to_have_count(0, timeout=15_000)
            expect(form.locator(".jp-OutputArea-output", has_text="DeepSeek settings: deepseek")).to_be_visible()
            shots.take(page, "reopened-settings-cell", element=form)
            shots.take(page, "reopened")
            assert_no_widget_errors(page, "after reopening without widget state")
        context.close()
