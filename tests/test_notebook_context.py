"""The context block (bounded by a token budget) and the fix request, built from recorded runs."""

from __future__ import annotations

import math

import pandas as pd

from deepseek_magic.features.cell_history import CellError, CellRun
from deepseek_magic.features.code_blocks import code_blocks
from deepseek_magic.features.notebook_context import (
    FIX_INSTRUCTION,
    context_block,
    count_tokens,
    fix_prompt,
    used_names,
    variable_summaries,
    with_context,
)


def outputs(table: dict[int, str]):  # type: ignore[no-untyped-def]
    return lambda count, limit: table.get(count, "")[:limit]


RUNS = [
    CellRun(3, "import pandas as pd\ndf = pd.read_csv('sales.csv')"),
    CellRun(4, "df.shape"),
    CellRun(5, "df['price'].mean() / df['qty'].sum()", error=CellError("KeyError", "'qty'", "Tb …\nKeyError: 'qty'")),
]


def test_a_block_lists_each_cell_with_its_source_output_and_error_in_order() -> None:
    block = context_block(RUNS, outputs({4: "(120, 4)"}), budget=6000)
    assert block.startswith("Notebook context: the last 3 cells run before this prompt")
    assert block.index("In [3]:") < block.index("In [4]:") < block.index("Out [4]:") < block.index("In [5]:")
    assert "Error in [5]:" in block and "KeyError: 'qty'" in block
    assert "Out [3]" not in block, "a cell that printed nothing has no Out section"
    blocks = code_blocks(block)
    assert blocks[0] == ("python", "import pandas as pd\ndf = pd.read_csv('sales.csv')")
    assert ("text", "(120, 4)") in blocks


def test_the_budget_leaves_out_the_oldest_cells_and_says_so() -> None:
    runs = [CellRun(n, f"x{n} = {'1' * 300}") for n in range(1, 11)]
    whole = context_block(runs, outputs({}), budget=100_000)
    assert count_tokens(whole) > 600
    block = context_block(runs, outputs({}), budget=600)
    assert count_tokens(block) <= 600 + 40, "the header is the only thing outside the cells' budget"
    kept = [n for n in range(1, 11) if f"In [{n}]:" in block]
    assert kept == list(range(11 - len(kept), 11)) and 0 < len(kept) < 10, "the newest are kept"
    assert f"{10 - len(kept)} cells before them left out (token budget)" in block


def test_a_single_cell_over_budget_is_cut_down_rather_than_dropped() -> None:
    runs = [CellRun(1, "y = 2\n" * 3000)]
    block = context_block(runs, outputs({1: "z" * 50_000}), budget=500)
    assert "In [1]:" in block and count_tokens(block) <= 560
    assert "characters left out" in block


def test_the_token_counter_is_one_swappable_function() -> None:
    runs = [CellRun(n, "a = 1") for n in range(1, 6)]
    # A counter that says every piece of text is 100 tokens: a 250-token budget keeps two cells.
    block = context_block(runs, outputs({}), budget=250, tokens=lambda text: 99)
    assert [n for n in range(1, 6) if f"In [{n}]:" in block] == [4, 5]
    assert count_tokens("abc" * 1000) >= math.ceil(3000 / 4), "the default over-estimates (3 characters a token)"


def test_no_runs_or_no_budget_is_no_block_and_the_prompt_alone() -> None:
    assert context_block([], outputs({}), budget=6000) == ""
    assert context_block(RUNS, outputs({}), budget=0) == ""
    assert with_context("", "the prompt") == "the prompt"
    assert with_context("BLOCK", "the prompt") == "BLOCK\n\n---\n\nthe prompt"


def test_used_names_in_order_without_keywords_or_private_names() -> None:
    assert used_names("total = df['a'].sum() / zero\nprint(total, _hidden)") == ["total", "df", "zero", "print"]
    # Magics do not parse as Python: every identifier outside strings and comments counts.
    assert used_names("%time result = model.fit(X)  # uses 'y'\n!ls 'data'") == ["time", "result", "model", "X", "ls"]


def test_variable_summaries_describe_data_briefly_and_functions_by_signature() -> None:
    frame = pd.DataFrame({"price": range(10_000), "name": ["x"] * 10_000})

    def scale(values: list[float], factor: float = 2.0) -> list[float]:
        return values

    namespace = {"df": frame, "scale": scale, "pd": pd, "n": 3, "DataFrame": pd.DataFrame, "In": ["", "x"]}
    lines = variable_summaries("y = scale(df['price'], n) + pd.DataFrame()\nIn", namespace)
    assert lines[0].startswith("scale: function scale(values: ") and "factor: 'float' = 2.0)" in lines[0]
    assert lines[1].startswith("df (DataFrame) = DataFrame: 10,000 rows × 2 columns")
    assert lines[2] == "n (int) = 3"
    assert len(lines) == 3, "modules, classes, shell names and unknown names are left out"
    assert all(len(line) <= 800 for line in lines)


def test_variables_whose_lookup_fails_are_skipped() -> None:
    class Hostile(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: object) -> object:
            raise RuntimeError("no")

    assert variable_summaries("a + b", Hostile(a=1, b=2)) == []


def test_the_fix_request_quotes_the_cell_the_traceback_and_the_variables() -> None:
    run = RUNS[2]
    prompt = fix_prompt(run, ["df (DataFrame) = DataFrame: 120 rows × 4 columns"])
    assert prompt.startswith("Explain and fix the error raised by this notebook cell (In [5]).")
    blocks = code_blocks(prompt)
    assert blocks[0] == ("python", run.source)
    assert blocks[1] == ("text", run.error.text)  # type: ignore[union-attr]
    assert blocks[2] == ("text", "df (DataFrame) = DataFrame: 120 rows × 4 columns")
    assert prompt.rstrip().endswith(FIX_INSTRUCTION)
    assert "Variables" not in fix_prompt(run, [])


def test_a_cell_containing_fences_cannot_break_out_of_its_block() -> None:
    run = CellRun(2, 'text = """\n```\nnot the end\n```\n"""\n1/0', error=CellError("ZeroDivisionError", "", "Z"))
    blocks = code_blocks(fix_prompt(run, []))
    assert blocks[0] == ("python", run.source)
