"""The demo notebook in a real JupyterLab, driven by Playwright through Debian's chromium: live, saved, reopened.

JupyterLab runs on 127.0.0.1 (random port and token, temporary config, data,
runtime and root directories, nothing that reaches the network) with its
kernels pointed at the bundled emulator; it is shared with the other browser
tests (``tests/browser/lab.py``). One pass over a copy of
``notebooks/quickstart.ipynb`` checks what a user sees, in the order a user
meets it:

* opening the demo does not mark it modified; Run All (replies, JSON mode, a
  batch, ``%deepseek fix``, ``--code``, the settings form, the chat box):
  each reply's reasoning folded under "Thought for … tokens", the answer
  visible, replies static once they end, the cells ``fix`` and ``--code``
  offered left unexecuted, the form rendered, no "Error displaying widget";
* one chat exchange lands in the transcript;
* one question re-run with slow pacing shows the live widget (a folded pane
  titled "Thinking… N tokens"), then its static copy, reasoning opened;
* File ▸ Save *with the form and the chat still open*: the saved file holds
  no widget view at all (the server extension ``deepseek_magic.ui.saved``
  left the live widgets out) and every reply in its static form;
* the form's Done button leaves a static summary in its place;
* the kernel shut down and the notebook reopened in a fresh browser profile
  (no widget state anywhere): the replies, the settings summary and the chat
  transcript read as they did live, and reopening does not mark it modified.

One pass instead of one test per surface: Run All on the demo is most of the
cost, and the surfaces are checked on the same live notebook a user would
have. Screenshots go to ``test-artifacts/browser/`` (also on failure), with
the server's log; with ``DEEPSEEK_MAGIC_REGENERATE_DOCS=1`` the four the
README shows are also written to ``docs/images/`` (never otherwise: a test
run does not rewrite tracked files).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
#: Fast, steady pacing for "Run All": each reply streams for a second or two.
FAST_TPS, TTFT = 400.0, 0.2
#: Slow pacing for the one re-run whose live widget is looked at (reasoning streams for a few seconds).
SLOW_TPS = 30.0
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FIRST_QUESTION = "What are three good ways"
CHAT_MESSAGE = "Which pandas method shows the missing values per column?"
THOUGHT = re.compile(r"Thought for [\d.]+ s · [\d,]+ tokens?")
THINKING = re.compile(r"Thinking… [\d,]+ tokens?")
SETTINGS_SUMMARY = re.compile(r"^DeepSeek settings: deepseek · ")
ERROR_TEXT = "Error displaying widget"
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


def doc_shot(shots: Shots, page: Page, name: str, element: Locator) -> None:
    """An element screenshot in the artifacts; copied to docs/images/ when regenerating the docs."""
    path = shots.take(page, name, element=element)
    if os.environ.get("DEEPSEEK_MAGIC_REGENERATE_DOCS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / f"{name}.png")


def code_cell_outputs(notebook: nbformat.NotebookNode, source: str) -> list[nbformat.NotebookNode]:
    cell = next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source))
    return list(cell.outputs)


# ------------------------------------------------------------------ the steps


def check_run_all(page: Page, state: dict[str, Any], shots: Shots) -> Locator:
    """After Run All: folded replies, static outputs, offered cells unexecuted, the form drawn; the first reply."""
    from playwright.sync_api import expect

    first_load = code_cell(page, "_ext deepseek_magic")
    expect(first_load.locator(".jp-OutputArea-output")).to_have_count(0)
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
    # JupyterLab turned the set_next_input payloads of `%deepseek fix` and `--code` into new cells below them,
    # and nothing ran them.
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
    expect(form.get_by_role("button", name="Test connection")).to_be_visible(timeout=15_000)
    expect(form.locator(".widget-dropdown", has_text="provider").first).to_be_visible()
    expect(form.get_by_text(SETTINGS_SUMMARY)).to_be_visible()
    doc_shot(shots, page, "settings-form", form)
    assert_no_widget_errors(page, "after Run All")
    shots.take(page, "after-run-all")
    return first


def chat_once(page: Page, shots: Shots) -> None:
    from playwright.sync_api import expect

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


def rerun_slowly(page: Page, first: Locator, lab: Lab, shots: Shots) -> None:
    """Re-run the first question at a slow pace: the live widget folds its reasoning, then leaves a static copy."""
    from playwright.sync_api import expect

    lab.emulator.config.tps = SLOW_TPS
    try:
        first.scroll_into_view_if_needed()
        first.locator(".jp-InputArea-editor").click()
        # An identical re-run is answered from the reply cache; ask the model again to watch it stream.
        page.keyboard.press("Control+Home")
        page.keyboard.press("End")
        page.keyboard.type(" --no-cache")
        page.keyboard.press("Control+Enter")
        pane = first.locator(".dsm-live .dsm-reasoning").first
        expect(pane.locator("summary")).to_have_text(THINKING, timeout=30_000)
        expect(pane, "the live reasoning pane is open while thinking").to_have_js_property("open", False)
        assert not pane.locator("blockquote").is_visible(), "the live reasoning text shows although folded"
        shots.take(page, "live-thinking", element=first)
        expect(first.get_by_text(re.compile(r"\[emulated\]")).first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1200)  # a few lines of answer
        doc_shot(shots, page, "streaming-reply", first)
    finally:
        lab.emulator.config.tps = FAST_TPS  # the pace is live: the rest of the reply comes quickly
    wait_for(page, "the re-run to finish", lambda s: s["running"] == 0 and s["kernel"] == "idle", 90, NAME)
    expect(first.locator(".dsm-live")).to_have_count(0, timeout=15_000)
    assert_reply_output(first, "after the live re-run")
    summary = first.locator(".jp-OutputArea-output details > summary").first
    summary.click()
    expect(first.locator(".jp-OutputArea-output details").first).to_have_js_property("open", True)
    doc_shot(shots, page, "reasoning-expanded", first)
    assert_no_widget_errors(page, "after the live re-run")


def check_saved_file(path: Path) -> None:
    """No widget view or widget state in the file; every reply, the form and the chat in their static forms."""
    saved = nbformat.read(path, as_version=4)
    assert WIDGET_VIEW not in json.dumps(saved), "a live widget (or a widget view of any kind) was saved"
    assert "widgets" not in saved.metadata, "widget state was saved into the notebook"
    reply_cells = [c for c in saved.cells if c.cell_type == "code" and c.source.startswith("%%deepseek")]
    assert len(reply_cells) >= 4
    for cell in reply_cells:
        mimes = {key for out in cell.outputs for key in out.get("data", {})}
        assert {"text/html", "text/markdown"} <= mimes, f"a reply was saved without its static form: {mimes}"
    first_saved = "\n".join(out.get("data", {}).get("text/html", "") for out in reply_cells[0].outputs)
    assert "[emulated]" in first_saved and re.search(r"<details [^>]*><summary [^>]*>Thought for", first_saved)
    settings_out = code_cell_outputs(saved, "%deepseek settings")
    assert [o.data["text/plain"].split(":")[0] for o in settings_out] == ["DeepSeek settings"]
    chat_out = code_cell_outputs(saved, "%deepseek chat")
    assert len(chat_out) == 1 and CHAT_MESSAGE in chat_out[0].data["text/html"]
    assert "[emulated]" in chat_out[0].data["text/html"] and "1 message" in chat_out[0].data["text/plain"]


def close_form(page: Page, shots: Shots) -> None:
    """Done leaves a static summary where the form was."""
    from playwright.sync_api import expect

    form = code_cell(page, "%deepseek settings")
    form.scroll_into_view_if_needed()
    form.locator(".jp-OutputArea-output").get_by_role("button", name="Done").click()
    expect(form.locator(".jp-OutputArea-output", has_text="DeepSeek settings: deepseek")).to_be_visible(timeout=15_000)
    expect(form.get_by_role("button", name="Test connection")).to_have_count(0)
    shots.take(page, "settings-done", element=form)


def check_reopened(page: Page, shots: Shots) -> None:
    """Without a kernel or any widget state: replies, settings summary, batch and chat read as they did live."""
    from playwright.sync_api import expect

    first = code_cell(page, FIRST_QUESTION)
    expect(first.locator(".jp-OutputArea-output details summary")).to_have_text(THOUGHT, timeout=15_000)
    assert_reply_output(first, "after reopening")
    shots.take(page, "reopened-first-reply", element=first)
    replies_shown = page.locator(".jp-OutputArea-output", has_text="[emulated]").count()
    assert replies_shown >= 4, f"only {replies_shown} replies are shown after reopening"
    chat = code_cell(page, "%deepseek chat")
    chat.scroll_into_view_if_needed()
    transcript = chat.locator(".deepseek-magic-chat")
    expect(transcript.locator("p", has_text=f"You: {CHAT_MESSAGE}")).to_be_visible(timeout=15_000)
    expect(transcript.get_by_text(re.compile(r"^\[emulated\] "))).to_have_count(1)
    shots.take(page, "reopened-chat", element=chat)
    form = code_cell(page, "%deepseek settings")
    form.scroll_into_view_if_needed()
    expect(form.get_by_text(SETTINGS_SUMMARY)).to_be_visible()
    expect(form.get_by_role("button", name="Test connection")).to_have_count(0)
    shots.take(page, "reopened-settings-cell", element=form)
    batch = code_cell(page, "--over reviews")
    expect(batch.get_by_text(re.compile(r"^batch 3/3 rows"))).to_be_visible()
    assert_no_widget_errors(page, "after reopening without widget state")
    shots.take(page, "reopened")


# ------------------------------------------------------------------ the test


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quickstart_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    lab.emulator.config.tps, lab.emulator.config.ttft = FAST_TPS, TTFT
    server = lab.server.serving(demo_copy(tmp_path))
    shots = Shots(ARTIFACTS)
    with sync_playwright() as playwright:
        context = open_browser(playwright, tmp_path / "profile-1")
        page = context.new_page()
        with shots.on_failure(page, "run-all"):
            open_notebook(page, server)
            shots.take(page, "opened")
            page.wait_for_timeout(1500)  # kernel info and spec arrive after "idle"; they are what rewrites metadata
            assert not dirty(page), "opening the demo marked it modified"
            menu(page, "Run", re.compile(r"^Run All Cells$"))
            state = wait_for(
                page,
                "Run All to finish",
                lambda s: s["executed"] == s["code"] and s["running"] == 0 and s["kernel"] == "idle",
                RUN_ALL_TIMEOUT,
                NAME,
            )
            first = check_run_all(page, state, shots)
        with shots.on_failure(page, "chat"):
            chat_once(page, shots)
        with shots.on_failure(page, "live"):
            rerun_slowly(page, first, lab, shots)
        with shots.on_failure(page, "save"):  # with the form and the chat still open
            menu(page, "File", re.compile(r"^Save( Notebook)?$"))
            wait_for(page, "the notebook to be saved", lambda s: not s["dirty"], 30, NAME)
            shots.take(page, "saved")
        check_saved_file(server.root / NAME)
        with shots.on_failure(page, "form-done"):
            close_form(page, shots)  # after the save: the file keeps the state a user saved
        context.close()

        for session in server.api("GET", "/api/sessions").json():
            server.api("DELETE", f"/api/sessions/{session['id']}")
        assert server.api("GET", "/api/kernels").json() == [], "the kernel was not shut down"
        context = open_browser(playwright, tmp_path / "profile-2")
        page = context.new_page()
        with shots.on_failure(page, "reopen"):
            open_notebook(page, server)
            page.wait_for_timeout(1500)
            check_reopened(page, shots)
            assert not dirty(page), "reopening the saved notebook marked it modified"
        context.close()
