"""JupyterLab for the browser tests, driven through Debian's chromium by Playwright, and the helpers they share.

The server listens on 127.0.0.1 (random port and token) with temporary config,
data, runtime, workspace and root directories and its own reply cache, its
kernels pointed at the bundled emulator; nothing reaches the network. Starting
JupyterLab costs several seconds, so the browser tests share one server per
test process (``tests/browser/conftest.py``): each test copies its notebook
into the root and opens it; between tests every kernel is shut down and the
saved workspace is dropped, so a test never sees another's tabs or kernels.
Screenshots go to ``test-artifacts/browser/``, with the server's log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from ports import free_port

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: Debian's chromium; Playwright's own browser builds are never downloaded.
CHROMIUM = Path("/usr/bin/chromium")
EMULATOR_KEY = "sk-emulator"
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
SERVER_START_TIMEOUT = 60.0
KERNEL_TIMEOUT_MS = 60_000


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


def code_notebook(folder: Path, name: str, cells: list[str]) -> Path:
    """A notebook of these code cells (python3 kernel), written to ``folder/name``; its path."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(notebook, path)
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@dataclass
class LabServer:
    """A running JupyterLab; ``name`` is the notebook a test opens (see :meth:`serving`)."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    name: str = ""

    def api(self, method: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10)

    def serving(self, notebook: Path) -> LabServer:
        """This server with ``notebook`` copied into its root, as the notebook to open."""
        if notebook.parent != self.root:
            shutil.copy(notebook, self.root)
        return dataclasses.replace(self, name=notebook.name)

    def notebook_url(self) -> str:
        return f"{self.url}/lab/tree/{self.name}?token={self.token}"

    def shut_down_kernels(self) -> None:
        """End every session (and so its kernel): what a test leaves running must not reach the next one."""
        for session in self.api("GET", "/api/sessions").json():
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels").json():  # a kernel started without a session
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def forget_workspaces(self) -> None:
        """Drop the saved workspaces, so the next test's page does not restore the previous test's tabs."""
        listing = self.api("GET", "/lab/api/workspaces").json()
        for workspace in listing["workspaces"]["ids"]:
            self.api("DELETE", f"/lab/api/workspaces/{workspace}")

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
def jupyter_lab(base: Path, emulator_url: str) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 with an empty root under ``base``; always shut down at the end.

    Only the user-level Jupyter directories are redirected (config, data,
    runtime): ``{sys.prefix}/share/jupyter`` stays on the data path, so the
    jupyterlab_widgets labextension and the python3 kernelspec are found.
    The kernels cache replies under ``base`` too, never in ``~/.cache``.
    """
    root, home = base / "root", base / "jupyter"
    root.mkdir(parents=True)
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
        "DEEPSEEK_MAGIC_CACHE_DIR": str(base / "reply-cache"),
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
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process, log)
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


def notebook_state(page: Page, name: str) -> dict[str, Any] | None:
    state: dict[str, Any] | None = page.evaluate(notebook_state_js(name))
    return state


def wait_for(
    page: Page,
    what: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
    name: str,
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
