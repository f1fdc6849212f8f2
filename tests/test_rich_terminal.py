"""The Rich terminal view, on a recording console: Markdown rendered, model text kept harmless, Ctrl-C in one line."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from deepseek_magic.core.events import ContentDelta, ReasoningDelta, Reply, Usage
from deepseek_magic.ui.choose import choose_view
from deepseek_magic.ui.rich_terminal import RichTerminalView
from deepseek_magic.ui.static import ReplyHeader
from deepseek_magic.ui.terminal_view import ReplyInterrupted, TerminalView

HEADER = ReplyHeader(provider="DeepSeek", model="deepseek-flash", thinking=True)


def view_on(width: int = 100, colour: bool = True) -> tuple[RichTerminalView, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=colour, color_system="standard" if colour else None)
    return RichTerminalView(HEADER, console=console), out


def stream(view: RichTerminalView, reasoning: str, answer: str, step: int = 3) -> Reply:
    view.start()
    for i in range(0, len(reasoning), step):
        view.on_event(ReasoningDelta(reasoning[i : i + step]))
    for i in range(0, len(answer), step):
        view.on_event(ContentDelta(answer[i : i + step]))
    reply = Reply(content=answer, reasoning=reasoning, finish_reason="stop", usage=Usage(10, 20))
    view.finish(reply)
    return reply


ANSWER = "Three ways:\n\n1. **head** shows rows\n2. `info()` shows types\n3. *describe*\n\n> quoted\n\nDone."


def test_markdown_is_rendered_and_reasoning_dimmed() -> None:
    view, out = view_on(colour=False)
    stream(view, "Let me think.\nSecond line.", ANSWER)
    text = out.getvalue()
    assert "**" not in text and "`" not in text and "> quoted" not in text
    lines = [line.rstrip() for line in text.splitlines()]
    start = lines.index("Three ways:")
    assert lines[start : start + 8] == [
        "Three ways:",
        "",
        " 1 head shows rows",
        " 2 info() shows types",
        " 3 describe",
        "",
        "▌ quoted",
        "",
    ]
    assert lines[start + 8] == "Done.", "blocks printed apart are spaced like one document"
    assert text.index("Thinking…") < text.index("Let me think.") < text.index("Second line.") < text.index("Three")
    assert text.rstrip().splitlines()[-1].startswith("-- 10 prompt + 20 completion tokens")
    coloured, out = view_on(colour=True)
    stream(coloured, "Let me think.", "Hi")
    assert "\x1b[2mLet me think." in out.getvalue(), "reasoning is dim"


def test_streamed_blocks_are_printed_once_and_in_order() -> None:
    view, out = view_on(colour=False)
    stream(view, "", ANSWER, step=1)
    text = out.getvalue()
    for piece in ("Three ways:", "1 head", "2 info()", "3 describe", "▌ quoted", "Done."):
        assert text.count(piece) == 1, (piece, text)
    assert text.index("Three ways:") < text.index("3 describe") < text.index("Done.")


def test_model_text_cannot_drive_the_terminal_or_rich() -> None:
    view, out = view_on(colour=True)
    hostile = "[bold red]not markup[/] \x1b]52;c;Y2xpcA==\x07 \x1b[2J [x](javascript:alert(1)) [y](https://e.com)"
    stream(view, "\x1b]0;title\x07thinking", hostile)
    text = out.getvalue()
    assert "[bold red]not markup[/]" in text, "Rich markup in model text is shown as typed"
    assert "\x1b]52" not in text and "\x1b[2J" not in text and "\x1b]0;" not in text and "\x07" not in text
    assert "\x1b]8;" not in text, "no clickable terminal hyperlinks from model text"


def test_a_reply_with_no_deltas_is_printed_whole() -> None:
    """A cached reply (or one retried after a bad JSON) is shown from the final text."""
    view, out = view_on(colour=False)
    view.start()
    view.finish(Reply(content="# Title\n\nBody **bold**", reasoning="why", cached=True, finish_reason="stop"))
    text = out.getvalue()
    assert "Title" in text and "# Title" not in text and "Body bold" in text and "why" in text
    assert "cached" in text.splitlines()[-1]


def test_an_interrupt_leaves_the_partial_and_one_line() -> None:
    view, out = view_on(colour=False)
    view.start()
    view.on_event(ContentDelta("Half an answ"))
    partial = Reply(content="Half an answ", interrupted=True)
    view.finish(partial, "interrupted")
    assert "Half an answ" in out.getvalue() and "⏹ interrupted" in out.getvalue().splitlines()[-1]
    error = view.interrupt_error(partial)
    assert isinstance(error, KeyboardInterrupt) and isinstance(error, ReplyInterrupted)
    (line,) = error._render_traceback_()
    assert line.startswith("KeyboardInterrupt: the reply was interrupted; the partial reply (12 characters)")
    assert TerminalView(HEADER, stream=io.StringIO()).interrupt_error(Reply())._render_traceback_() == [
        "KeyboardInterrupt: the reply was interrupted before any output"
    ]


def test_a_terminal_gets_rich_and_a_pipe_gets_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Tty())
    assert isinstance(choose_view("auto", object(), HEADER), RichTerminalView)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert isinstance(choose_view("auto", object(), HEADER), TerminalView)
