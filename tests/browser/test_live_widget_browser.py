"""The live reply widget in a real JupyterLab (Chromium): what it draws while a reply streams, and that no
model text ever runs as script there.

Two cells feed the widget hostile text:

* a probe widget gets raw hostile HTML *straight from the test* as a finished
  block and as the tool trace (bypassing the kernel's sanitizer), and hostile
  Markdown as reasoning and as the open tail: what the browser module draws
  must still hold no element a payload could use, and the text must show;
* a ``%%deepseek`` cell streams the XSS corpus (answer and reasoning) plus a
  Markdown table and a code block from the emulator at a slow pace, watched
  while it streams (screenshots of the streaming reply and of the expanded
  reasoning go to ``test-artifacts/browser/live``), then after it ended: the
  static copy has the same boxed reasoning and the widget is gone.

Every payload sets ``window.__xss``; it must stay undefined.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser.lab import ARTIFACTS, Shots, code_cell, code_notebook, menu, open_browser, open_notebook, wait_for
from security.xss import ALL

from deepseek_magic.emulator import Scripted

if TYPE_CHECKING:
    from browser.conftest import Lab

NAME = "live.ipynb"
HOSTILE_HTML = (
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    '<svg onload="window.__xss=3"></svg><iframe srcdoc="<script>parent.__xss=4</script>"></iframe>'
    '<a href="javascript:window.__xss=5">js link</a><p onclick="window.__xss=6">kept <strong>bold</strong></p>'
    '<details open ontoggle="window.__xss=7"><summary>s</summary>d</details>'
)
HOSTILE_TEXT = "<img src=x onerror=window.__xss=8> <script>window.__xss=9</script> **still text**"
PROBE = f"""
from IPython.display import display
from deepseek_magic.ui.live_reply import LiveReply
probe = LiveReply(lambda: "probe", header="probe header", status="probing")
display(probe)
probe.push({{"r": {HOSTILE_TEXT!r}, "n": 3}})
probe.push({{"b": {HOSTILE_HTML!r}}})
probe.push({{"a": {HOSTILE_TEXT!r} + "\\n\\n| a | b |\\n|---|--:|\\n| <b>x</b> | 2 |\\n"}})
probe.tools = {HOSTILE_HTML!r}
"""
TABLE = "| tool | cost |\n|---|--:|\n" + "".join(f"| item {n} | {n * 7} |\n" for n in range(1, 13))
ANSWER = f"## A table\n\n{TABLE}\n```python\nprint('<b>not bold</b>')\n```\n\nAnd the corpus:\n\n{ALL}"
CELLS = [
    "%load_ext deepseek_magic",
    PROBE,
    "%%deepseek --view widget --no-cache\nShow a table, some code and the corpus.",
]
SENTINEL_JS = "() => typeof window.__xss"
FORBIDDEN_JS = """(root) => Array.from(root.querySelectorAll('*')).filter((node) =>
    ['script', 'img', 'svg', 'iframe', 'object', 'embed', 'style'].includes(node.localName)
    || Array.from(node.attributes).some((a) => a.name.startsWith('on')
        || (a.name === 'href' && !/^(https?|mailto):/i.test(a.value)))).map((node) => node.outerHTML)"""
THINKING = re.compile(r"^Thinking… [\d,]+ tokens? · [\d.]+ s$")
THOUGHT = re.compile(r"^Thought for [\d.]+ s · [\d,]+ tokens?$")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_live_widget_draws_text_and_runs_no_script(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    emulator = lab.emulator
    emulator.config.tps = 40.0
    emulator.config.scripted.append(Scripted(content=ANSWER, reasoning="Let me think.\n" + ALL))
    shots = Shots(ARTIFACTS / "live")
    server = lab.server.serving(code_notebook(tmp_path / "source", NAME, CELLS))
    with sync_playwright() as playwright:
        context = open_browser(playwright, tmp_path / "profile")
        page = context.new_page()
        with shots.on_failure(page, "probe"):
            open_notebook(page, server)
            menu(page, "Run", re.compile(r"^Run All Cells$"))
            probe = code_cell(page, "probe = LiveReply").locator(".dsm-live")
            expect(probe.locator(".dsm-blocks strong")).to_have_text("bold", timeout=30_000)
            expect(probe.locator(".dsm-tail table td").first).to_have_text("<b>x</b>")
            assert "**still text**" not in probe.locator(".dsm-tail").inner_text(), "the tail renders Markdown"
            expect(probe.locator(".dsm-tail strong")).to_have_text("still text")
            assert HOSTILE_TEXT in probe.locator(".dsm-reasoning blockquote").text_content()
            assert "window.__xss=8" in probe.locator(".dsm-tail").inner_text(), "hostile markup shows as text"
            assert page.evaluate(FORBIDDEN_JS, probe.element_handle()) == []
            assert probe.locator(".dsm-blocks a").get_attribute("href") is None, "a javascript: link lost its href"

        with shots.on_failure(page, "streaming"):
            cell = code_cell(page, "%%deepseek --view widget")
            live = cell.locator(".dsm-live")
            summary = live.locator(".dsm-reasoning > summary")
            expect(summary).to_have_text(THINKING, timeout=30_000)
            expect(live.locator(".dsm-reasoning")).to_have_js_property("open", False)
            summary.click()  # the user opens the pane while it streams: it stays open through updates
            expect(live.locator(".dsm-reasoning blockquote")).to_contain_text("Let me think.")
            emulator.config.tps = 400.0  # the rest of the reasoning (the corpus) quickly, the pane open through it
            expect(summary).to_have_text(THOUGHT, timeout=30_000)
            emulator.config.tps = 40.0  # the answer at a readable pace again, so it is checked while it streams
            expect(live.locator("table tbody tr").first).to_be_visible(timeout=60_000)
            expect(live.locator(".dsm-reasoning")).to_have_js_property("open", True)
            expect(summary).to_have_text(THOUGHT)
            shots.take(page, "streaming-reply", element=cell)
            expect(live.get_by_text("window.__xss=1").first).to_be_attached(timeout=60_000)
            shots.take(page, "streaming-corpus", element=cell)
            assert page.evaluate(FORBIDDEN_JS, live.element_handle()) == []
            assert page.evaluate(SENTINEL_JS) == "undefined", "a payload ran in the live widget"
            emulator.config.tps = 0.0  # the pace is live: the rest of the reply comes at once

        with shots.on_failure(page, "static"):
            wait_for(
                page,
                "the reply to finish",
                lambda s: s["executed"] == s["code"] and s["running"] == 0 and s["kernel"] == "idle",
                90,
                NAME,
            )
            expect(cell.locator(".dsm-live")).to_have_count(0, timeout=15_000)
            reasoning = cell.locator(".jp-OutputArea-output details").first
            expect(reasoning.locator("summary")).to_have_text(THOUGHT)
            reasoning.locator("summary").click()
            expect(reasoning.locator("blockquote")).to_contain_text("Let me think.")
            box = reasoning.evaluate("(node) => getComputedStyle(node).borderTopStyle")
            assert box == "solid", "the static reasoning is boxed like the live one"
            expect(cell.locator(".jp-OutputArea-output table tbody tr")).to_have_count(12)
            shots.take(page, "static-reply-expanded-reasoning", element=cell)
            page.wait_for_timeout(500)
            assert page.evaluate(SENTINEL_JS) == "undefined", "a payload ran"
            assert page.get_by_text("Error displaying widget").count() == 0
        context.close()
