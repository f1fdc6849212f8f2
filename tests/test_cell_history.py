"""The execution history: errors as bounded plain text, runs by number, the recent cells for a context block."""

from __future__ import annotations

import re

import pytest

from deepseek_magic.features.cell_history import (
    ERROR_CAP,
    SOURCE_CAP,
    CellError,
    CellHistory,
    CellRun,
    clip_middle,
    format_error,
    plain_text,
)


def raised(code: str, filename: str = "<cell-7>") -> BaseException:
    """The exception ``code`` raises, with a real traceback through a frame named ``filename``."""
    try:
        exec(compile(code, filename, "exec"), {})
    except BaseException as exc:
        return exc
    raise AssertionError("the code did not raise")


def test_a_traceback_is_plain_text_with_the_cell_named_as_the_user_knows_it() -> None:
    exc = raised("def inner():\n    return 1 / 0\n\ninner()\n")
    error = format_error(exc, filenames={"<cell-7>": "Cell In[7]"})
    assert error.name == "ZeroDivisionError" and error.message == "division by zero"
    assert error.headline == "ZeroDivisionError: division by zero"
    assert error.text.startswith("Traceback (most recent call last):")
    assert 'File "Cell In[7]", line 4, in <module>' in error.text
    assert 'File "Cell In[7]", line 2, in inner' in error.text
    assert error.text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "<cell-7>" not in error.text


def test_leading_shell_frames_are_dropped_and_the_rest_kept() -> None:
    shell: dict[str, object] = {}
    exec(compile("def run_code(code):\n    exec(code, {})\n", "<shell>", "exec"), shell)  # like IPython's run_code
    cell = compile("def f():\n    return 1 / 0\nf()\n", "<cell-3>", "exec")
    try:
        shell["run_code"](cell)  # type: ignore[operator]
    except ZeroDivisionError as exc:
        kept = format_error(exc, skip_frame=lambda name: name in (__file__, "<shell>"))
        whole = format_error(exc)
    assert '"<shell>"' in whole.text and '"<shell>"' not in kept.text and __file__ not in kept.text
    assert '"<cell-3>", line 3, in <module>' in kept.text and '"<cell-3>", line 2, in f' in kept.text


def test_colour_codes_and_control_characters_never_reach_the_text() -> None:
    exc = raised("raise ValueError('\\x1b[31mred\\x1b[0m and \\x1b]0;title\\x07 \\x07bell')")
    error = format_error(exc)
    assert "\x1b" not in error.text and "\x07" not in error.text
    assert "red and" in error.text and "[31m" not in error.text
    assert error.message == "red and  bell"


def test_chained_exceptions_keep_their_cause_and_cells_are_renamed_throughout() -> None:
    exc = raised("try:\n    {}['k']\nexcept KeyError as e:\n    raise RuntimeError('lookup failed') from e\n")
    error = format_error(exc, filenames={"<cell-7>": "Cell In[7]"})
    assert "KeyError: 'k'" in error.text and "RuntimeError: lookup failed" in error.text
    assert "direct cause" in error.text
    assert error.text.count("Cell In[7]") == 2 and "<cell-7>" not in error.text


def test_a_syntax_error_shows_its_line_and_caret_under_the_cell_name() -> None:
    try:
        compile("x = (1,\ny = 2\n", "<cell-9>", "exec")
    except SyntaxError as exc:
        error = format_error(exc, filenames={"<cell-9>": "Cell In[9]"})
    assert error.name == "SyntaxError"
    assert 'File "Cell In[9]", line 1' in error.text and "^" in error.text


def test_an_exception_whose_str_raises_still_gives_a_line() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    try:
        raise Broken
    except Broken as exc:
        error = format_error(exc)
    assert error.name == "Broken" and "could not be read" in error.message
    assert "Broken" in error.text


def test_huge_tracebacks_are_bounded_keeping_the_end() -> None:
    exc = raised("def f(n):\n    return f(n + 1)\nf(0)\n")
    error = format_error(exc)
    assert len(error.text) <= ERROR_CAP + 80
    assert error.text.rstrip().endswith("RecursionError: maximum recursion depth exceeded")
    long_message = raised("raise ValueError('x' * 100_000)")
    assert len(format_error(long_message).message) <= 300
    assert len(format_error(long_message).text) <= ERROR_CAP + 80


def test_clip_middle_says_how_much_went() -> None:
    text = "A" * 1000 + "B" * 1000 + "C" * 1000
    clipped = clip_middle(text, 600)
    assert clipped.startswith("A") and clipped.endswith("C") and len(clipped) <= 660
    left_out = int(re.search(r"\[([\d,]+) characters left out\]", clipped).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert left_out == len(text) - len(clipped.split("\n")[0]) - len(clipped.split("\n")[-1])
    assert clip_middle("short", 600) == "short"


def test_plain_text_keeps_newlines_and_tabs() -> None:
    assert plain_text("a\tb\n\x1b[1mc\x1b[0m\r") == "a\tb\nc"


# ------------------------------------------------------------------- history


def error(name: str = "ValueError") -> CellError:
    return CellError(name, "bad", f"{name}: bad")


def test_runs_are_found_by_number_and_the_last_error_skips_the_extensions_own_cells() -> None:
    history = CellHistory()
    history.add(CellRun(1, "x = 1"))
    history.add(CellRun(2, "1/0", error=error("ZeroDivisionError")))
    history.add(CellRun(3, "%deepseek fix", error=error("UsageError"), own=True))
    history.add(CellRun(4, "y = x"))
    assert history.get(2) is not None and history.get(2).source == "1/0"  # type: ignore[union-attr]
    assert history.get(9) is None
    last = history.last_error()
    assert last is not None and last.count == 2
    assert [run.count for run in history.errors()] == [2]


def test_recent_cells_skip_own_cells_and_excluded_numbers_and_count_a_rerun_once() -> None:
    history = CellHistory()
    history.add(CellRun(1, "import pandas as pd", cell_id="a"))
    history.add(CellRun(2, "df = load()", cell_id="b"))
    history.add(CellRun(3, "%%deepseek\nhi", cell_id="c", own=True))
    history.add(CellRun(4, "df.head()", cell_id="d"))
    history.add(CellRun(5, "df = load(fixed=True)", cell_id="b"))  # cell b run again
    history.add(CellRun(6, "1/0", cell_id="e", error=error()))
    assert [run.count for run in history.recent(3)] == [4, 5, 6]
    assert [run.count for run in history.recent(3, exclude=frozenset({6}))] == [1, 4, 5]
    assert [run.count for run in history.recent(10)] == [1, 4, 5, 6], "cell b once, with its latest run"
    assert history.recent(0) == []


def test_without_cell_ids_the_same_source_counts_once() -> None:
    history = CellHistory()
    for count, source in enumerate(["x", "y", "x"], 1):
        history.add(CellRun(count, source))
    assert [run.count for run in history.recent(5)] == [2, 3]


def test_the_history_is_bounded_in_runs_and_in_source_size() -> None:
    history = CellHistory(limit=3)
    for count in range(1, 6):
        history.add(CellRun(count, f"x = {count}"))
    assert len(history) == 3 and history.oldest == 3 and history.get(2) is None
    history.add(CellRun(6, "y" * (SOURCE_CAP + 500)))
    kept = history.get(6)
    assert kept is not None and len(kept.source) < SOURCE_CAP + 100 and "500 more characters" in kept.source


@pytest.mark.parametrize("count", [0, 1, 2])
def test_recent_never_returns_more_than_asked(count: int) -> None:
    history = CellHistory()
    for number in range(1, 5):
        history.add(CellRun(number, f"cell {number}"))
    assert len(history.recent(count)) == count
