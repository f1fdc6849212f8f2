"""The demo in a real JupyterLab, saved and reopened without its kernel: it reads as it did live.

Run All on the demo (replies, JSON mode, a batch, the settings form, the chat
box), one chat exchange, a reply re-run with slow pacing (screenshotted while
it streams) and its reasoning opened; then File ▸ Save *without* closing the
form or the chat, the kernel shut down, and the notebook reopened in a fresh
browser profile (no widget state anywhere): no "Error displaying widget",
the settings summary and the chat transcript visible. The saved file holds
no widget view at all (the server extension ``deepseek_magic.ui.saved`` left
the live widgets out). Opening the demo does not mark it modified.

Screenshots go to ``test-artifacts/browser/surfaces/``; with
``DEEPSEEK_MAGIC_REGENERATE_DOCS=1`` the four the README shows are also
written to ``docs/images/`` (never otherwise: a test run does not rewrite
tracked files).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from browser.lab import ARTIFACTS, REPO, Shots, code_cell, menu, open_browser, open_notebook, wait_for
from demo_notebooks import pristine_copy

if TYPE_CHECKING:
    from browser.conftest import Lab
    from playwright.sync_api import Locator, Page

DEMO = REPO / "notebooks" / "quickstart.ipynb"
NAME = "tour.ipynb"
DOCS_IMAGES = REPO / "docs" / "images"
SHOTS = ARTIFACTS / "surfaces"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ERROR_TEXT = "Error displaying widget"
FAST_TPS, TTFT, SLOW_TPS = 400.0, 0.2, 30.0
CHAT_MESSAGE = "Which pandas method shows the missing values per column?"
THINKING = re.compile(r"Thinking… [\d,]+ tokens?")
THOUGHT = re.compile(r"Thought for [\d.]+ s · [\d,]+ tokens?")
RUN_ALL_TIMEOUT = 150.0


def demo_copy(folder: Path) -> Path:
    """The committed demo, outputs cleared, with this Python's version in ``language_info``.

    JupyterLab rewrites ``language_info`` with the running kernel's, so the
    committed file can match only one Python version; with that one made
    equal, anything else that marks the notebook modified on opening shows.
    """
    copy = pristine_copy(DEMO, folder / "pristine")
    notebook = nbformat.read(copy, as_version=4)
    notebook.metadata.language_info.version = platform.python_version()
    target = folder / NAME
    nbformat.write(notebook, target)
    return target


def dirty(page: Page) -> bool:
    state = wait_for(page, "the notebook state", lambda s: True, 30, NAME)
    return bool(state["dirty"])


def assert_no_widget_errors(page: Page, when: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text("Loading widget..."), f"{when}: a widget never loaded").to_have_count(0, timeout=15_000)
    errors = page.get_by_text(ERROR_TEXT)
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    assert not texts, f"{when}: outputs say {ERROR_TEXT!r}: {texts}"


def doc_shot(shots: Shots, page: Page, name: str, element: Locator) -> None:
    """An element screenshot in the artifacts; copied to docs/images/ when regenerating the docs."""
    path = shots.take(page, name, element=element)
    if os.environ.get("DEEPSEEK_MAGIC_REGENERATE_DOCS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / f"{name}.png")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_demo_saved_and_reopened_without_its_kernel_reads_as_it_did_live(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    emulator, server = lab.emulator, lab.server.serving(demo_copy(tmp_path))
    emulator.config.tps, emulator.config.ttft = FAST_TPS, TTFT
    shots = Shots(SHOTS)
    with sync_playwright() as playwright:
        context = open_browser(playwright, tmp_path / "profile-1")
        page = context.new_page()

        # ---- open: not modified; Run All
        with shots.on_failure(page, "run-all"):
            open_notebook(page, server)
            page.wait_for_timeout(1500)  # kernel info and spec arrive after "idle"; they are what rewrites metadata
            assert not dirty(page), "opening the demo marked it modified"
            menu(page, "Run", re.compile(r"^Run All Cells$"))
            wait_for(
                page,
                "Run All to finish",
                lambda s: s["executed"] == s["code"] and s["running"] == 0 and s["kernel"] == "idle",
                RUN_ALL_TIMEOUT,
                NAME,
            )
            first_load = code_cell(page, "_ext deepseek_magic")
            expect(first_load.locator(".jp-OutputArea-output")).to_have_count(0)
            form = code_cell(page, "%deepseek settings")
            form.scroll_into_view_if_needed()
            expect(form.get_by_role("button", name="Test connection")).to_be_visible(timeout=15_000)
            expect(form.get_by_text(re.compile(r"^DeepSeek settings: deepseek · "))).to_be_visible()
            doc_shot(shots, page, "settings-form", form)

        # ---- one chat exchange: it lands in the transcript above the input
        with shots.on_failure(page, "chat"):
            chat = code_cell(page, "%deepseek chat")
            chat.scroll_into_view_if_needed()
            box = chat.get_by_placeholder(re.compile("Ask DeepSeek"))
            box.fill(CHAT_MESSAGE)
            box.press("Enter")
            transcript = chat.locator(".deepseek-magic-chat")
            expect(transcript.locator("p", has_text=f"You: {CHAT_MESSAGE}")).to_be_visible(timeout=30_000)
            expect(transcript.get_by_text(re.compile(r"^\[emulated\] "))).to_have_count(1, timeout=30_000)
            expect(transcript.get_by_text("DeepSeek chat · session default · 1 message")).to_be_visible()
            expect(chat.get_by_role("button", name="Send")).to_be_enabled()
            doc_shot(shots, page, "chat", chat)

        # ---- a reply streaming (slow pacing), then its reasoning opened
        with shots.on_failure(page, "streaming"):
            first = code_cell(page, "What are three good ways")
            emulator.config.tps = SLOW_TPS
            try:
                first.scroll_into_view_if_needed()
                first.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Home")
                page.keyboard.press("End")
                page.keyboard.type(" --no-cache")  # an identical re-run would come from the reply cache
                page.keyboard.press("Control+Enter")
                expect(first.locator(".dsm-live .dsm-reasoning summary").first).to_have_text(THINKING, timeout=30_000)
                streaming_answer = first.get_by_text(re.compile(r"\[emulated\]")).first
                expect(streaming_answer).to_be_visible(timeout=60_000)
                page.wait_for_timeout(1200)  # a few lines of answer
                doc_shot(shots, page, "streaming-reply", first)
                wait_for(page, "the re-run to finish", lambda s: s["running"] == 0 and s["kernel"] == "idle", 90, NAME)
            finally:
                emulator.config.tps = FAST_TPS
            summary = first.locator(".jp-OutputArea-output details > summary").first
            expect(summary).to_have_text(THOUGHT, timeout=15_000)
            summary.click()
            expect(first.locator(".jp-OutputArea-output details").first).to_have_js_property("open", True)
            doc_shot(shots, page, "reasoning-expanded", first)
            assert_no_widget_errors(page, "live")

        # ---- save with the form and the chat still open
        with shots.on_failure(page, "save"):
            menu(page, "File", re.compile(r"^Save( Notebook)?$"))
            wait_for(page, "the notebook to be saved", lambda s: not s["dirty"], 30, NAME)
            shots.take(page, "saved")
        context.close()

        saved = nbformat.read(server.root / NAME, as_version=4)
        text = json.dumps(saved)
        assert WIDGET_VIEW not in text, "a live widget (or a widget view of any kind) was saved"
        assert "widgets" not in saved.metadata
        settings_out = code_cell_outputs(saved, "%deepseek settings")
        assert [o.data["text/plain"].split(":")[0] for o in settings_out] == ["DeepSeek settings"]
        chat_out = code_cell_outputs(saved, "%deepseek chat")
        assert len(chat_out) == 1 and CHAT_MESSAGE in chat_out[0].data["text/html"]
        assert "[emulated]" in chat_out[0].data["text/html"] and "1 message" in chat_out[0].data["text/plain"]

        # ---- this notebook's kernel shut down; reopened in a fresh profile, no widget state anywhere
        for session in server.api("GET", "/api/sessions").json():
            if session["path"] == NAME:
                server.api("DELETE", f"/api/sessions/{session['id']}")
        context = open_browser(playwright, tmp_path / "profile-2")
        page = context.new_page()
        with shots.on_failure(page, "reopen"):
            open_notebook(page, server)
            page.wait_for_timeout(1500)
            chat = code_cell(page, "%deepseek chat")
            chat.scroll_into_view_if_needed()
            transcript = chat.locator(".deepseek-magic-chat")
            expect(transcript.locator("p", has_text=f"You: {CHAT_MESSAGE}")).to_be_visible(timeout=15_000)
            expect(transcript.get_by_text(re.compile(r"^\[emulated\] "))).to_have_count(1)
            shots.take(page, "reopened-chat", element=chat)
            form = code_cell(page, "%deepseek settings")
            form.scroll_into_view_if_needed()
            expect(form.get_by_text(re.compile(r"^DeepSeek settings: deepseek · "))).to_be_visible()
            expect(form.get_by_role("button", name="Test connection")).to_have_count(0)
            batch = code_cell(page, "--over reviews")
            expect(batch.get_by_text(re.compile(r"^batch 3/3 rows"))).to_be_visible()
            assert_no_widget_errors(page, "after reopening")
            shots.take(page, "reopened")
            assert not dirty(page), "reopening the saved notebook marked it modified"
        context.close()


def code_cell_outputs(notebook: nbformat.NotebookNode, source: str) -> list[nbformat.NotebookNode]:
    cell = next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source))
    return list(cell.outputs)
