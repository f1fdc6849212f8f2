"""notebooks/quickstart.ipynb in a real JupyterLab, driven by Playwright through Debian's chromium.

JupyterLab runs on 127.0.0.1 (random port and token, temporary config, data,
runtime and root directories, nothing that reaches the network) with its
kernels pointed at the bundled emulator; it is shared with the other browser
tests (``tests/browser/lab.py``). The test opens a copy of the demo
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

import re
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from browser.lab import ARTIFACTS, REPO, Shots, code_cell, menu, open_browser, open_notebook, wait_for
from demo_notebooks import pristine_copy

if TYPE_CHECKING:
    from browser.conftest import Lab
    from playwright.sync_api import Locator, Page

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
NAME = NOTEBOOK.name
#: Fast, steady pacing for "Run All": each reply streams for a second or two.
FAST_TPS, TTFT = 400.0, 0.2
#: Slow pacing for the one re-run whose live widget is looked at (reasoning streams for a few seconds).
SLOW_TPS = 25.0
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FIRST_QUESTION = "What are three good ways"
THOUGHT = re.compile(r"Thought for [\d.]+ s · [\d,]+ tokens?")
THINKING = re.compile(r"Thinking… [\d,]+ tokens?")
ERROR_TEXT = "Error displaying widget"
RUN_ALL_TIMEOUT = 90.0


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


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quickstart_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    emulator = lab.emulator
    emulator.config.tps, emulator.config.ttft = FAST_TPS, TTFT
    server = lab.server.serving(pristine_copy(NOTEBOOK, tmp_path / "source"))
    shots = Shots(ARTIFACTS)
    with sync_playwright() as playwright:
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
                NAME,
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
                wait_for(page, "the re-run to finish", lambda s: s["running"] == 0 and s["kernel"] == "idle", 60, NAME)
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
            wait_for(page, "the notebook to be saved", lambda s: not s["dirty"], 30, NAME)
            shots.take(page, "saved")
        context.close()

        saved = nbformat.read(server.root / NAME, as_version=4)
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
