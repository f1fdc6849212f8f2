"""Prompt text made from the notebook itself: the context block of ``--context N`` and the ``fix`` request.

Both are built from :class:`~deepseek_magic.features.cell_history.CellRun` records and
plain callables, never from IPython directly, so they can be tested with
strings and reused by any front end.

Everything here is bounded: a source, an output and a traceback each have a
cap, and the context block as a whole fits a token budget counted by
:func:`count_tokens`, the one place that turns text into a token count for
this module (an estimate today; an exact tokenizer can replace its body
without touching anything else).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deepseek_magic.features.cell_history import CellRun, clip_middle
from deepseek_magic.features.code_blocks import fenced
from deepseek_magic.features.interpolation import render_value
from deepseek_magic.features.tokens import count_text

__all__ = [
    "FIX_INSTRUCTION",
    "context_block",
    "count_tokens",
    "fix_prompt",
    "used_names",
    "variable_summaries",
    "with_context",
]

#: What a fix request asks for (the ask for a fenced block follows, the same as ``--code`` adds).
FIX_INSTRUCTION = "Explain the cause in a few sentences, then give the whole corrected cell."
#: Caps, in characters, for one cell's parts inside a context block.
_CONTEXT_SOURCE_CAP = 4_000
_CONTEXT_OUTPUT_CAP = 2_000
_CONTEXT_ERROR_CAP = 3_000
#: Variables described in a fix request, and the characters each may take.
_MAX_VARIABLES = 12
_VARIABLE_BUDGET = 600
_VARIABLES_CAP = 4_000
#: Names a cell may use that describe nothing about the user's data.
_SHELL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "display"})

OutputText = Callable[[int, int], str]
"""``output_text(count, limit)``: the text execution ``count`` printed or returned, at most ``limit`` characters."""


def count_tokens(text: str) -> int:
    """Tokens ``text`` takes, for the context budget: DeepSeek's V4 tokenizer (:mod:`.tokens`, loaded on first use).

    Every budget in this module goes through here; without the tokenizer it is
    the characters/3 over-estimate.
    """
    return count_text(text)


# ----------------------------------------------------------------------- context


def _cell_section(run: CellRun, output: str, caps: tuple[int, int, int]) -> str:
    source_cap, output_cap, error_cap = caps
    parts = [f"In [{run.count}]:", fenced(clip_middle(run.source.strip("\n"), source_cap), "python")]
    if output.strip():
        parts += [f"Out [{run.count}]:", fenced(clip_middle(output.strip("\n"), output_cap), "text")]
    if run.error is not None:
        parts += [f"Error in [{run.count}]:", fenced(clip_middle(run.error.text, error_cap), "text")]
    return "\n".join(parts)


def context_block(
    runs: Sequence[CellRun],
    output_text: OutputText,
    *,
    budget: int,
    tokens: Callable[[str], int] = count_tokens,
) -> str:
    """The cells ``runs`` (oldest first) as one block of text within ``budget`` tokens; ``""`` for none.

    ``budget`` is ``DeepSeekMagics.context_tokens`` in a notebook (6,000 unless configured).

    The newest cells are kept first: when the budget runs out, the oldest
    are left out (and the block says how many). A newest cell that alone is
    over budget has its parts cut down until it fits.
    """
    if not runs or budget <= 0:
        return ""
    caps = (_CONTEXT_SOURCE_CAP, _CONTEXT_OUTPUT_CAP, _CONTEXT_ERROR_CAP)
    kept: list[str] = []
    used = 0
    left_out = 0
    for position, run in enumerate(reversed(runs)):
        section = _cell_section(run, output_text(run.count, caps[1]), caps)
        cost = tokens(section) + 1
        if used + cost > budget and kept:
            left_out = len(runs) - position
            break
        shrunk = caps
        while used + cost > budget and shrunk[0] > 60:
            shrunk = (shrunk[0] // 2, shrunk[1] // 2, shrunk[2] // 2)
            section = _cell_section(run, output_text(run.count, shrunk[1]), shrunk)
            cost = tokens(section) + 1
        kept.append(section)
        used += cost
    kept.reverse()
    shown = len(kept)
    header = f"Notebook context: the last {_cells(shown)} run before this prompt (source, output and error)."
    if left_out:
        header += f" {_cells(left_out).capitalize()} before {'them' if shown > 1 else 'it'} left out (token budget)."
    return header + "\n\n" + "\n\n".join(kept)


def with_context(block: str, prompt: str) -> str:
    """The user message: the context block, a rule, then the prompt (the prompt alone without a block)."""
    return f"{block}\n\n---\n\n{prompt}" if block else prompt


def _cells(count: int) -> str:
    return "1 cell" if count == 1 else f"{count} cells"


# --------------------------------------------------------------------------- fix


def used_names(source: str) -> list[str]:
    """Names ``source`` refers to, in order of first appearance (no keywords, no private names).

    Parsed with :mod:`ast` when the source is Python; cells with magics or a
    syntax error fall back to every identifier outside strings and comments.
    """
    names: list[str] = []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        found = re.findall(r"(?<![\w.])[^\W\d]\w*", _without_strings(source))
    else:
        nodes = sorted(
            (node for node in ast.walk(tree) if isinstance(node, ast.Name)), key=lambda n: (n.lineno, n.col_offset)
        )
        found = [node.id for node in nodes]
    for name in found:
        if name not in names and not keyword.iskeyword(name) and not name.startswith("_"):
            names.append(name)
    return names


def _without_strings(source: str) -> str:
    """``source`` with quoted strings and ``#`` comments blanked (a rough cut for code that does not parse)."""
    return re.sub(r"(?s)'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\"|#[^\n]*", " ", source)


def variable_summaries(source: str, namespace: Mapping[str, Any], *, budget: int = _VARIABLE_BUDGET) -> list[str]:
    """One bounded description per variable ``source`` uses that exists in ``namespace``.

    Data is described by :func:`~deepseek_magic.features.interpolation.render_value`
    (a DataFrame as its shape, dtypes and first rows); functions by their
    signature; modules and classes are left out (their names say enough).
    """
    lines: list[str] = []
    for name in used_names(source):
        if len(lines) >= _MAX_VARIABLES or name in _SHELL_NAMES:
            continue
        try:
            if name not in namespace:
                continue
            value = namespace[name]
        except Exception:
            continue
        described = _describe(name, value, budget)
        if described is not None:
            lines.append(described)
    return lines


def _describe(name: str, value: Any, budget: int) -> str | None:
    if inspect.ismodule(value) or inspect.isclass(value):
        return None
    if inspect.isroutine(value):
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(…)"
        return f"{name}: function {name}{signature}"[:budget]
    kind = type(value).__name__
    room = budget - len(name) - len(kind) - 6
    while True:  # indenting the lines after the first adds to the text: render smaller until it fits
        first, _, rest = render_value(value, budget=max(room, 20)).partition("\n")
        described = f"{name} ({kind}) = {first}"
        if rest:
            described += "\n" + "\n".join("    " + line for line in rest.split("\n"))
        if len(described) <= budget or room <= 20:
            return described[:budget]
        room -= max(10, len(described) - budget)


def fix_prompt(run: CellRun, variables: Sequence[str]) -> str:
    """The request ``%deepseek fix`` sends: the failing cell, its traceback, its variables, the ask.

    The ask for one fenced Python block is added by the caller, as for ``--code``.
    """
    assert run.error is not None, "fix_prompt needs a run that failed"
    parts = [
        f"Explain and fix the error raised by this notebook cell (In [{run.count}]).",
        "",
        f"In [{run.count}]:",
        fenced(run.source.strip("\n"), "python"),
        "",
        "Error:",
        fenced(run.error.text, "text"),
    ]
    if variables:
        listing = clip_middle("\n".join(variables), _VARIABLES_CAP)
        parts += ["", "Variables the cell uses, as they are now:", fenced(listing, "text")]
    parts += ["", FIX_INSTRUCTION]
    return "\n".join(parts)
