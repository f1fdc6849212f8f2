"""Which block of a reply becomes the new cell: the longest Python (or untagged) fenced block."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepseek_magic.features.code_blocks import (
    CODE_INSTRUCTION,
    code_blocks,
    fenced,
    main_code_block,
    with_code_instruction,
)


def test_the_longest_python_block_wins_over_earlier_and_later_snippets() -> None:
    reply = (
        "The error comes from `x / 0`. For example:\n\n```python\nx / 0\n```\n\n"
        "Here is the whole cell, fixed:\n\n```python\nx = 1\ny = 2\nprint(x / y)\n```\n\n"
        "You can check it with:\n\n```python\nassert y\n```\n"
    )
    assert main_code_block(reply) == "x = 1\ny = 2\nprint(x / y)"


def test_other_languages_are_never_offered_and_untagged_blocks_are() -> None:
    reply = "Install it:\n```bash\npip install a-very-long-package-name-that-is-longer\n```\n```\nimport a\n```\n"
    assert main_code_block(reply) == "import a"
    assert main_code_block('```json\n{"a": 1}\n```\n```sql\nselect 1\n```') is None
    assert main_code_block("no code at all, only `inline code`") is None


@pytest.mark.parametrize("tag", ["python", "py", "Python3", "ipython", "python title=fix.py"])
def test_python_tags(tag: str) -> None:
    assert main_code_block(f"```{tag}\nprint(1)\n```") == "print(1)"


def test_commonmark_fences_tildes_longer_fences_indentation_and_an_unclosed_end() -> None:
    assert main_code_block("~~~python\na = '```'\n~~~") == "a = '```'"
    assert main_code_block("````python\nprint('''\n```\n''')\n````") == "print('''\n```\n''')"
    assert main_code_block("  ```python\n  if x:\n      y()\n  ```") == "if x:\n    y()"
    assert main_code_block("Cut off by max_tokens:\n```python\nfor i in range(3):\n    print(i)") == (
        "for i in range(3):\n    print(i)"
    )
    assert main_code_block("```python\r\nprint(1)\r\n```\r\n") == "print(1)"


def test_a_backtick_fence_whose_info_string_has_a_backtick_is_not_a_fence() -> None:
    # CommonMark: "```py`x" is text, so the lone "```" below opens an (empty, unclosed) block instead.
    assert code_blocks("```py`x\nprint(1)\n```") == [("", "")]
    assert main_code_block("```py`x\nprint(1)\n```") is None


def test_empty_blocks_are_skipped_and_ties_go_to_the_first() -> None:
    assert main_code_block("```python\n\n```\n```python\nb = 2\n```") == "b = 2"
    assert main_code_block("```python\na = 1\n```\n```python\nb = 2\n```") == "a = 1"


def test_the_instruction_is_added_once() -> None:
    once = with_code_instruction("Write a loop.\n")
    assert once == f"Write a loop.\n\n{CODE_INSTRUCTION}"
    assert with_code_instruction(once) == once


@given(st.text())
def test_fenced_text_comes_back_whole_whatever_it_contains(text: str) -> None:
    text = text.replace("\r", "")
    assert code_blocks(fenced(text, "python")) == [("python", text)]
