"""Finding the code in a reply, and asking for it in a form that can be found.

``%%deepseek --code`` and ``%deepseek fix`` offer the reply's code as a new
cell. Which block is "the" code, when a reply has several, is decided here:

* only fenced blocks (```` ``` ```` or ``~~~``, CommonMark rules: up to three
  spaces of indentation, a closing fence at least as long, an unclosed fence
  running to the end of the reply) tagged ``python``, ``py``, ``python3``,
  ``ipython``, ``ipython3`` or untagged count: a notebook cell runs Python, and
  a ``bash`` or ``json`` block pasted into one would not;
* of those, the **longest** wins (the first on a tie). A fix usually restates
  the whole cell and adds short snippets around it ("you could also …"), so
  the longest block is the main one far more often than the first or the last.

Nothing here runs code: the chosen text is handed to the notebook as a new cell.
"""

from __future__ import annotations

import re

__all__ = ["CODE_INSTRUCTION", "PYTHON_TAGS", "code_blocks", "fenced", "main_code_block", "with_code_instruction"]

#: Info strings that mean "this block is Python a cell can run".
PYTHON_TAGS = frozenset({"", "python", "py", "python3", "ipython", "ipython3"})
#: Appended to a ``--code`` prompt so the model answers in a form :func:`main_code_block` finds.
CODE_INSTRUCTION = "Give the code as one complete fenced ```python block."

_OPENING = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


def with_code_instruction(prompt: str) -> str:
    """``prompt`` with :data:`CODE_INSTRUCTION` after it (once)."""
    if prompt.rstrip().endswith(CODE_INSTRUCTION):
        return prompt
    return f"{prompt.rstrip()}\n\n{CODE_INSTRUCTION}"


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced block of ``markdown`` as ``(language, code)``, in order."""
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if opening is None or (opening.group(2)[0] == "`" and "`" in opening.group(3)):
            index += 1
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3).strip()
        language = info.split()[0].lower() if info else ""
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        index += 1
        while index < len(lines) and not closing.match(lines[index]):
            body.append(_dedent(lines[index], indent))
            index += 1
        index += 1  # past the closing fence (or the end)
        blocks.append((language, "\n".join(body)))
    return blocks


def _dedent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces, as CommonMark does for an indented fence's content."""
    stripped = 0
    while stripped < indent and stripped < len(line) and line[stripped] == " ":
        stripped += 1
    return line[stripped:]


def main_code_block(markdown: str) -> str | None:
    """The code a reply offers for a new cell: its longest Python (or untagged) block; ``None`` without one."""
    best: str | None = None
    for language, code in code_blocks(markdown):
        if language not in PYTHON_TAGS or not code.strip():
            continue
        if best is None or len(code.strip()) > len(best.strip()):
            best = code
    return None if best is None else best.strip("\n")


def fenced(text: str, language: str = "") -> str:
    """``text`` in a backtick fence longer than any backtick run inside it, so nothing in it can close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"
