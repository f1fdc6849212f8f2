"""The emulator answers fix and code requests with a fenced Python block (so the offline demo shows the flow)."""

from __future__ import annotations

from typing import Any

import pytest

from deepseek_magic.emulator.code_replies import code_reply
from deepseek_magic.features.cell_history import CellRun, format_error
from deepseek_magic.features.code_blocks import CODE_INSTRUCTION, main_code_block, with_code_instruction
from deepseek_magic.features.notebook_context import context_block, fix_prompt, with_context


def failing(source: str) -> CellRun:
    try:
        exec(compile(source, "<cell-4>", "exec"), {})
    except BaseException as exc:
        return CellRun(4, source, error=format_error(exc, filenames={"<cell-4>": "Cell In[4]"}))
    raise AssertionError("the cell did not fail")


def fix_request(run: CellRun, context: str = "") -> str:
    return with_context(context, with_code_instruction(fix_prompt(run, ["units (int) = 0"])))


def answer(wire: Any, text: str) -> str:
    response = wire.post(wire.body(text, thinking={"type": "disabled"}))
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def test_a_fix_request_gets_the_cell_back_with_its_error_caught(wire: Any) -> None:
    run = failing("total = 10\nratio = total / 0\nprint(ratio)")
    content = answer(wire, fix_request(run))
    assert content.startswith("[emulated]") and "`ZeroDivisionError: division by zero`" in content
    code = main_code_block(content)
    assert code is not None
    compile(code, "<fix>", "exec")  # the offered cell is valid Python
    assert "    ratio = total / 0" in code and "except ZeroDivisionError as error:" in code
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # run here, by the test, to show the stand-in does what it says
    assert namespace["total"] == 10 and "ratio" not in namespace
    assert answer(wire, fix_request(run)) == content, "deterministic"


def test_the_failing_cell_is_found_after_a_context_block(wire: Any) -> None:
    earlier = failing("import json\njson.loads('{')")
    run = failing("values = [1, 2]\nvalues[5]")
    context = context_block([earlier, CellRun(3, "x = 1")], lambda count, limit: "", budget=5000)
    code = main_code_block(answer(wire, fix_request(run, context)))
    assert code is not None and "values[5]" in code and "except IndexError as error:" in code
    assert "json.loads" not in code


def test_a_syntax_error_gets_its_line_commented_out_and_a_library_error_is_caught_as_exception() -> None:
    try:
        compile("x = 1\ny = (2,\nprint(x)\n", "<cell-4>", "exec")
    except SyntaxError as exc:
        run = CellRun(4, "x = 1\ny = (2,\nprint(x)", error=format_error(exc, filenames={"<cell-4>": "Cell In[4]"}))
    code = main_code_block(code_reply(fix_request(run), "m", "thinking off") or "")
    assert code is not None and "# y = (2,  # [emulated] commented out: SyntaxError" in code
    compile(code, "<fix>", "exec")
    library = failing("class ParserError(Exception):\n    pass\nraise ParserError('bad row')")
    library_code = main_code_block(code_reply(fix_request(library), "m", "thinking off") or "")
    assert library_code is not None and "except Exception as error:" in library_code


def test_a_code_request_gets_a_placeholder_block(wire: Any) -> None:
    content = answer(wire, with_code_instruction("Write a function that sorts the cities by population."))
    code = main_code_block(content)
    assert code is not None and "# [emulated] code for: Write a function that sorts the cities by population." in code
    assert CODE_INSTRUCTION not in code
    compile(code, "<code>", "exec")


@pytest.mark.parametrize(
    "text",
    [
        "How do I fix a flat tyre?",
        "Please fix this:\n```python\nx = 1\n```\nIt prints nothing.",
        "Explain ```python blocks``` to me.",
    ],
)
def test_other_requests_get_the_usual_answer(wire: Any, text: str) -> None:
    assert code_reply(text, "m", "thinking off") is None
    assert "You wrote:" in answer(wire, text)
