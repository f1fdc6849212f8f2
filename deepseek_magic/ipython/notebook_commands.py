"""``%deepseek fix [N]`` and ``%deepseek export PATH``: the notebook's errors and the conversation, out of the kernel.

``fix`` builds one request from the recorded execution history (the failing
cell's source, its traceback as plain text, short summaries of the variables
it uses) and sends it through the same path as a ``%%deepseek`` cell, so it
streams, is keyed by its own cell (re-running ``fix`` replaces its turn),
honours ``--context`` and the cache, and offers the reply's code as a new cell
below. Nothing generated is run.

``export`` writes a session as Markdown, as a notebook, or as the session
file (JSON), never over an existing file without ``--force`` and never
through a symbolic link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError

if TYPE_CHECKING:
    from deepseek_magic.ipython.magics import DeepSeekMagics

__all__ = ["export", "fix"]

#: Cell options that make no sense for a fix request (it asks for Python code, in one turn of a session).
_NOT_WITH_FIX = {"over": "--over", "json": "--json", "schema": "--schema", "tools": "--tools", "prefix": "--prefix"}


def _execution_number(words: list[str]) -> tuple[int | None, list[str]]:
    """The optional leading execution number (``3``, ``[3]``, ``In[3]``) and the remaining words."""
    if not words or words[0].startswith("-"):
        return None, words
    word = words[0]
    digits = word.removeprefix("In").removeprefix("[").removesuffix("]")
    if not digits.isdigit() or int(digits) < 1:
        raise UsageError(f"fix takes an execution number (the n shown as [n] beside a cell), not {word!r}")
    return int(digits), words[1:]


def fix(magics: DeepSeekMagics, words: list[str]) -> None:
    """Explain and fix the last error (or execution N's): the reply streams, its code lands in a new cell below."""
    number, rest = _execution_number(words)
    args = magics.parse_words(rest)
    for dest, option in _NOT_WITH_FIX.items():
        if getattr(args, dest):
            raise UsageError(f"fix cannot be combined with {option}")
    history = magics.recorder.history
    run = history.last_error() if number is None else history.get(number)
    if run is None or run.error is None or run.own:
        raise UsageError(_nothing_to_fix(magics, number))
    from deepseek_magic.features.notebook_context import fix_prompt, variable_summaries

    variables = variable_summaries(_python_source(magics, run.source), magics.user_ns)
    args.code = True  # a fix is code: the reply's block goes into a new cell
    magics.ask(args, fix_prompt(run, variables), exclude=frozenset({run.count}))


def _nothing_to_fix(magics: DeepSeekMagics, number: int | None) -> str:
    failed = [run.count for run in magics.recorder.history.errors()]
    if number is None:
        return "nothing to fix: no cell has raised an error since the extension was loaded"
    if not failed:
        return f"nothing to fix: execution {number} raised no error, and no other cell has"
    listed = ", ".join(str(count) for count in failed[-8:])
    return f"nothing to fix in execution {number}: it raised no error (errors were raised by {listed})"


def _python_source(magics: DeepSeekMagics, source: str) -> str:
    """The cell as Python (IPython's own transformation turns magics into calls), to find the names it uses."""
    try:
        return str(magics.shell.transform_cell(source))  # type: ignore[union-attr]
    except Exception:
        return source


def export(magics: DeepSeekMagics, words: list[str]) -> None:
    """``export PATH [-s NAME] [--force]``: the session as .md, .ipynb or .json (by the path's suffix)."""
    from deepseek_magic.ui.export import FORMATS, export_session

    force = "--force" in words
    rest = [word for word in words if word != "--force"]
    name = None
    if "-s" in rest or "--session" in rest:
        at = rest.index("-s") if "-s" in rest else rest.index("--session")
        if at + 1 >= len(rest):
            raise UsageError(f"{rest[at]} needs a session name")
        name = rest[at + 1]
        del rest[at : at + 2]
    if len(rest) != 1 or rest[0].startswith("-"):
        raise UsageError("export takes one PATH ending in .md, .ipynb or .json (and optionally -s NAME, --force)")
    session = magics.get_session(name)
    try:
        path = export_session(session, rest[0], overwrite=force)
    except FileExistsError:
        raise UsageError(f"{rest[0]} exists; add --force to replace it") from None
    except OSError as exc:
        raise UsageError(f"could not export to {rest[0]}: {exc.strerror or exc}") from None
    kind = FORMATS[path.suffix.lower()]
    turns = len(session.turns)
    print(f"Session {session.name} ({turns} turn{'s' if turns != 1 else ''}) exported as {kind} to {path}")
