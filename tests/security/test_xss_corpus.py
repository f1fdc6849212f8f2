"""Nothing script-capable reaches the page: the XSS corpus through every view, checked independently.

The corpus (``xss.CORPUS``) goes in as the model's reasoning and answer (the
emulator's scripted replies), as a tool's result, as a server's error message
and as the user's prompt; every display bundle and every widget value the
views produce is checked by :mod:`xss`, which shares no code with the
library's escapers. ``test_the_checker_flags_the_raw_corpus`` keeps the
checker honest: it must flag the payloads themselves.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from comms import Transcript, record_comms
from IPython.utils.capture import capture_output
from security.xss import ALL, CORPUS, bundle_problems, html_problems, markdown_problems, widget_bundles
from shell import TestingShell

from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import DeepSeekError
from deepseek_magic.core.events import Reply, ToolCall, Usage
from deepseek_magic.emulator import EmulatorConfig, Scripted, run_in_thread
from deepseek_magic.features.tools import ToolResult
from deepseek_magic.ui import static
from deepseek_magic.ui.chat_widget import ChatWidget
from deepseek_magic.ui.render import markdown_code, markdown_safe, markdown_text, markdown_to_html
from deepseek_magic.ui.terminal_view import TerminalView

KEY = "sk-emulator-xss-41d0"
#: Payloads harmless even unescaped (the checker need not flag them): an image URL markdown-it quotes, entities.
HARMLESS_RAW = {'![image](x" onerror="window.__xss=1)', "&lt;img src=x onerror=window.__xss=1&gt;"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, str]]:
    log: list[tuple[str, Any, str]] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append((kind, data, comm_id)))
    return log


@pytest.fixture
def ip(
    testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch, messages: Any
) -> Iterator[TestingShell]:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setattr("deepseek_magic.ui.choose.in_kernel", lambda shell: True)
    monkeypatch.setattr("deepseek_magic.ui.batch_progress.in_kernel", lambda shell: True)
    testing_shell.user_ns.clear()
    testing_shell.init_user_ns()
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    testing_shell.run_line_magic("deepseek", "cache")  # warm: the cache is not under test
    yield testing_shell
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")
    emulator.config.scripted.clear()


def assert_clean(bundles: list[dict[str, Any]], where: str) -> None:
    assert bundles, f"{where}: nothing was rendered, so nothing was checked"
    problems = [problem for data in bundles for problem in bundle_problems(data)]
    assert not problems, f"{where}: {problems[:5]}"


def hostile_reply() -> Reply:
    return Reply(
        content=ALL,
        reasoning=ALL,
        tool_calls=[ToolCall(id="c1", name="<img src=x onerror=window.__xss=1>", arguments=ALL)],
        usage=Usage(prompt_tokens=1, completion_tokens=2),
        finish_reason="stop",
        matched_stop="<svg/onload=window.__xss=1>",
        error=ALL,
        warnings=[ALL],
        logprobs={
            "content": [
                {"token": c, "logprob": -0.1, "top_logprobs": [{"token": c, "logprob": -1}] * 2} for c in CORPUS
            ]
        },
    )


# ----------------------------------------------------------------------------- the checker itself


def test_the_checker_flags_the_raw_corpus() -> None:
    missed = [payload for payload in CORPUS if not markdown_problems(payload) and payload not in HARMLESS_RAW]
    assert not missed, f"the checker would let these through raw: {missed}"
    assert html_problems('<a href="jav&#x61;script:x">') and html_problems('<a href=" &#14; javascript:x">')
    assert not html_problems('<a href="https://example.com">ok</a><code>&lt;img&gt;</code>')


# ------------------------------------------------------------------------- escapers and static bundles


@pytest.mark.parametrize("payload", [*CORPUS, ALL])
def test_every_escaper_leaves_no_script_capable_markup(payload: str) -> None:
    for escape in (markdown_safe, markdown_text, markdown_code):
        assert not markdown_problems(escape(payload)), f"{escape.__name__}({payload!r})"
    assert not html_problems(markdown_to_html(payload)), payload


def test_static_bundles_of_a_hostile_reply_are_clean() -> None:
    reply = hostile_reply()
    trace = [ToolResult(call=reply.tool_calls[0], content=ALL, failed=True, seconds=0.1)]
    header = static.ReplyHeader(provider="<b>p</b>", model="<img src=x onerror=window.__xss=1>", session=ALL)
    bundles = [
        static.bundle(reply, header, trace=trace),
        static.bundle(reply, header, live=True, trace=trace),
        static.html_bundle(reply, header, trace=trace),
    ]
    choices = Reply(content=ALL, choices=[Reply(content=ALL, finish_reason=ALL), Reply(content=ALL)])
    bundles += [static.bundle(choices), static.html_bundle(choices)]
    assert_clean(bundles, "static bundles")


def test_the_answer_keeps_its_formatting_and_code_reads_as_written() -> None:
    answer = "# Title\n\n- **bold** and `x < y`\n\n```python\nif a < b:\n    print('<b>')\n```\n"
    markdown = markdown_safe(answer)
    assert "# Title" in markdown and "**bold**" in markdown
    rendered = markdown_problems(markdown)
    assert not rendered
    from markdown_it import MarkdownIt

    rendered_html = MarkdownIt("commonmark", {"html": True}).render(markdown)
    assert "<h1>Title</h1>" in rendered_html and "<strong>bold</strong>" in rendered_html
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered_html))
    assert "x < y" in shown and "if a < b:\n    print('<b>')" in shown, "code shows its characters"


# ------------------------------------------------------------------------------ through the real views


def outputs(captured: Any) -> list[dict[str, Any]]:
    return [output.data for output in captured.outputs]


@pytest.mark.parametrize("view", ["text", "widget"])
def test_a_hostile_reply_through_a_cell(ip: TestingShell, emulator: Any, messages: Any, view: str) -> None:
    emulator.config.scripted.append(Scripted(content=ALL, reasoning=ALL))
    with capture_output() as captured:
        ip.run_cell(f"%%deepseek --view {view} --no-cache --out said\n{ALL}")
    assert ip.user_ns["said"] == ALL, "the reply itself is kept as the model wrote it"
    final = captured.outputs[-1].data
    assert "text/markdown" in final
    assert_clean(outputs(captured) + widget_bundles(messages), f"the {view} view")


@pytest.mark.parametrize("view", ["text", "widget"])
def test_a_hostile_tool_result_through_a_cell(ip: TestingShell, emulator: Any, messages: Any, view: str) -> None:
    ip.user_ns["payload"] = ALL
    ip.run_cell("def probe(term: str) -> str:\n    '''Look a term up.'''\n    return payload\n")
    with capture_output() as captured:
        ip.run_cell(f"%%deepseek --view {view} --no-cache --tools probe\nUse probe for the word ocean.")
    shown = json.dumps(outputs(captured)) + json.dumps([m[1] for m in messages], default=str)
    assert "probe" in shown and "xss" in shown, "the tool's result was shown"
    assert_clean(outputs(captured) + widget_bundles(messages), f"tool results in the {view} view")


@pytest.mark.parametrize("view", ["text", "widget"])
def test_a_hostile_server_error_through_a_cell(ip: TestingShell, emulator: Any, messages: Any, view: str) -> None:
    emulator.config.scripted.append(Scripted(error=ALL, status=400))
    with capture_output() as captured, pytest.raises(DeepSeekError) as raised:
        ip.run_cell(f"%%deepseek --view {view} --no-cache\nHello")
    assert "xss" in str(raised.value), "the server's message is shown (as one line of text)"
    rendered = outputs(captured) + widget_bundles(messages)
    assert_clean(rendered or [{"text/plain": str(raised.value)}], f"errors in the {view} view")


def test_history_usage_and_sessions_escape_prompts(ip: TestingShell, emulator: Any) -> None:
    emulator.config.scripted.append(Scripted(content=ALL))
    ip.run_cell(f"%%deepseek --view text --no-cache -s evil\n{ALL}")
    with capture_output() as captured:
        for command in ("history -s evil", "usage", "sessions", "help", "config"):
            ip.run_line_magic("deepseek", command)
        ip.run_cell(f"%%deepseek --dry-run\n{ALL}")
    shown = outputs(captured)
    assert len(shown) == 6 and "xss" in json.dumps(shown)
    assert_clean(shown, "history, usage, sessions, help, config and dry run")


def test_the_chat_widget(emulator: Any, messages: Any) -> None:
    session = Session(settings=Settings.build(base_url=emulator.base_url, api_key=KEY, max_retries=0))
    transcript = Transcript()
    chat = ChatWidget(session, display=transcript)
    emulator.config.scripted.append(Scripted(content=ALL, reasoning=ALL))
    assert chat.send(ALL) is not None
    emulator.config.scripted.append(Scripted(error=ALL, status=422))
    assert chat.send("again") is None
    bundles = [item for item in transcript.items if isinstance(item, dict)]
    bundles += [view.outputs[-1]["data"] for view in transcript.items if hasattr(view, "outputs") and view.outputs]
    assert any("xss" in json.dumps(bundle) for bundle in bundles)
    assert_clean(bundles + widget_bundles(messages), "the chat")


def test_batch_progress_and_error_column(ip: TestingShell, emulator: Any, messages: Any) -> None:
    ip.user_ns["rows"] = pd.DataFrame({"text": [ALL, "fine"]})
    emulator.config.scripted.extend([Scripted(error=ALL, status=400), Scripted(error=ALL, status=400)])
    with capture_output() as captured:
        ip.run_cell("%%deepseek --over rows --out result --no-cache\nSay {text}")
    assert "error" in ip.user_ns["result"].columns
    assert_clean(outputs(captured) + widget_bundles(messages), "batch progress")


# ------------------------------------------------------------------------------------- the terminal

ESCAPES = (
    "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07",  # OSC 52: set the clipboard
    "\x1b]0;owned\x07",  # window title
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x9b31m",  # 8-bit CSI
    "\x1b[8m",  # concealed text
    "line\roverwritten",
    "\u202eevil\u202c",  # bidi override
)


def test_the_terminal_view_writes_no_control_sequence(emulator: Any) -> None:
    hostile = "start\t" + "".join(ESCAPES) + "\nend"
    emulator.config.scripted.append(Scripted(content=hostile, reasoning=hostile))
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]  # dimming on: our own codes are the only ones
    view = TerminalView(static.ReplyHeader(provider="DeepSeek", model="\x1b]0;m\x07"), stream=out)
    session = Session(settings=Settings.build(base_url=emulator.base_url, api_key=KEY))
    view.start()
    reply = session.ask("hello", on_event=view.on_event)
    view.finish(reply)
    text = out.getvalue()
    for own in ("\x1b[2m", "\x1b[0m"):
        text = text.replace(own, "")
    assert "start\t" in text and "\nend" in text, "newlines and tabs are kept"
    bad = sorted({hex(ord(c)) for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F})
    assert not bad and "\u202e" not in text, f"control characters reached the terminal: {bad}"


def test_escaping_stays_linear_on_hostile_backtick_runs() -> None:
    """Unmatched backtick runs used to be searched forward one by one (quadratic); a reply must not stall a view."""
    import time

    hostile = ("`a" + "``x" * 50) * 1000
    started = time.perf_counter()
    escaped = markdown_safe(hostile)
    assert time.perf_counter() - started < 1.0
    assert not markdown_problems(escaped[:5000])
