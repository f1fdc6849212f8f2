"""The XSS corpus in a real JupyterLab: text view, widget view, chat and history, live and after reopening.

Every payload sets ``window.__xss = 1`` when it runs. A control cell shows
one raw payload as ``text/markdown`` that sets ``window.__control = 1``
instead: it proves this JupyterLab does run script from trusted Markdown
outputs (live, and from the saved notebook after reopening, which the server
signed), so ``window.__xss`` staying undefined means the library's outputs
carry none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from browser.lab import ARTIFACTS, Shots, code_notebook, menu, open_browser, open_notebook, wait_for
from security.xss import ALL

from deepseek_magic.emulator import Scripted

if TYPE_CHECKING:
    from browser.conftest import Lab

NAME = "xss.ipynb"
CONTROL = '<img src=x onerror="window.__control=1">'
CELLS = [
    "%load_ext deepseek_magic",
    "%%deepseek --view text --no-cache\nShow the corpus as text.",
    "%%deepseek --view widget --no-cache\nShow the corpus in the widget.",
    "%deepseek chat",
    "reply = get_ipython().magics_manager.registry['DeepSeekMagics'].last_chat.send('Show the corpus in the chat.')",
    "%deepseek history",
    f"from IPython.display import display\ndisplay({{'text/markdown': {CONTROL!r}}}, raw=True)",
]
SENTINELS_JS = "() => [typeof window.__xss, window.__control === 1]"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_corpus_runs_no_script_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    emulator = lab.emulator
    emulator.config.scripted.extend(Scripted(content=ALL, reasoning=ALL) for _ in range(3))
    shots = Shots(ARTIFACTS / "xss")
    server = lab.server.serving(code_notebook(tmp_path / "source", NAME, CELLS))
    with sync_playwright() as playwright:
        context = open_browser(playwright, tmp_path / "profile-1")
        page = context.new_page()
        with shots.on_failure(page, "run-all"):
            open_notebook(page, server)
            menu(page, "Run", re.compile(r"^Run All Cells$"))
            wait_for(
                page,
                "Run All to finish",
                lambda s: s["executed"] == s["code"] and s["running"] == 0 and s["kernel"] == "idle",
                90,
                NAME,
            )
            assert not emulator.config.scripted, "the text view, the widget view and the chat each got the corpus"
            expect(page.locator(".jp-OutputArea-output", has_text="window.__xss=1").first).to_be_attached()
            expect(page.get_by_text("Loading widget...")).to_have_count(0, timeout=15_000)
            page.wait_for_function("() => window.__control === 1", timeout=15_000)
            page.wait_for_timeout(1000)  # onerror/ontoggle/animation handlers fire within moments
            shots.take(page, "run-all")
            assert page.evaluate(SENTINELS_JS) == ["undefined", True], "a payload ran in the live page"
            menu(page, "File", re.compile(r"^Save( Notebook)?$"))
            wait_for(page, "the notebook to be saved", lambda s: not s["dirty"], 30, NAME)
        context.close()

        saved = nbformat.read(server.root / NAME, as_version=4)
        kept = [out for cell in saved.cells for out in cell.get("outputs", [])]
        # The text view's and the widget view's static bundles (the chat lives in its widget, not saved).
        assert sum("window.__xss=1" in str(out) for out in kept) >= 2, "the corpus is in the saved notebook"

        for session in server.api("GET", "/api/sessions").json():
            server.api("DELETE", f"/api/sessions/{session['id']}")
        context = open_browser(playwright, tmp_path / "profile-2")
        page = context.new_page()
        with shots.on_failure(page, "reopen"):
            open_notebook(page, server)
            page.wait_for_function("() => window.__control === 1", timeout=15_000)
            page.wait_for_timeout(1000)
            shots.take(page, "reopened")
            assert page.evaluate(SENTINELS_JS) == ["undefined", True], "a payload ran from the saved notebook"
        context.close()
