"""``{In[n]}``, ``{Out[n]}``, ``{Err[n]}`` and ``{Err}`` in a prompt.

IPython's own ``In`` holds the *transformed* source (``%%deepseek`` becomes
``get_ipython().run_cell_magic(…)``), and a missing entry in ``In`` or ``Out``
would read as "index out of range" or "no key 9 in dict". These stand-ins take
their place while a prompt is interpolated: ``In[n]`` is the source as typed,
``Out[n]`` the value IPython keeps (or, when the cell returned nothing, the
text it printed, where IPython records it), ``Err[n]`` the formatted error of
execution ``n`` and ``{Err}`` the latest one. A number with nothing behind it
is one clear line naming what exists, before anything is sent.

Each is given plain callables by the IPython layer; nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deepseek_magic.features.cell_history import SOURCE_CAP, CellHistory
from deepseek_magic.features.interpolation import InterpolationError, PromptReference

__all__ = ["MISSING", "ErrorRefs", "InputRefs", "OutputRefs"]

#: What a lookup returns when an execution has no value.
MISSING: Any = object()
_LISTED = 8  # execution numbers named in a "which exist" hint


def execution_number(name: str, key: object) -> int:
    """``key`` as an execution number (the ``n`` of ``In [n]``), or one line saying what is wanted."""
    if isinstance(key, bool) or not isinstance(key, int):
        raise InterpolationError(f"{name}[…] takes an execution number, the n shown as [n] beside a cell")
    if key < 1:
        raise InterpolationError(f"{name}[{key}]: execution numbers start at 1 (the n shown as [n] beside a cell)")
    return key


def _listing(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[-_LISTED:])
    return ("…, " if len(numbers) > _LISTED else "") + shown


class InputRefs(PromptReference):
    """``In[n]``: the source of execution ``n`` as it was typed."""

    def __init__(self, source_of: Callable[[int], str | None], last: Callable[[], int]) -> None:
        self._source_of = source_of
        self._last = last

    def __getitem__(self, key: object) -> str:
        number = execution_number("In", key)
        source = self._source_of(number)
        if source is None:
            raise InterpolationError(f"there is no execution {number} (the last one is {self._last()})")
        if len(source) > SOURCE_CAP:
            return source[:SOURCE_CAP] + f"\n# … [{len(source) - SOURCE_CAP:,} more characters]"
        return source

    def prompt_text(self, expr: str, budget: int) -> str:
        raise InterpolationError(f"{{{expr}}}: name an execution, e.g. {{In[3]}} for the source of cell [3]")


class OutputRefs(PromptReference):
    """``Out[n]``: the value execution ``n`` returned, else the text it printed (where IPython keeps it)."""

    def __init__(
        self,
        value_of: Callable[[int], Any],
        text_of: Callable[[int, int], str],
        numbers: Callable[[], list[int]],
        budget: int,
    ) -> None:
        self._value_of = value_of
        self._text_of = text_of
        self._numbers = numbers
        self._budget = budget

    def __getitem__(self, key: object) -> Any:
        number = execution_number("Out", key)
        value = self._value_of(number)
        if value is not MISSING:
            return value
        text = self._text_of(number, self._budget)
        if text.strip():
            return text
        held = self._numbers()
        hint = f" (Out holds {_listing(held)})" if held else ""
        raise InterpolationError(f"execution {number} has no output{hint}")

    def prompt_text(self, expr: str, budget: int) -> str:
        raise InterpolationError(f"{{{expr}}}: name an execution, e.g. {{Out[3]}} for the output of cell [3]")


class ErrorRefs(PromptReference):
    """``Err[n]``: the error execution ``n`` raised, as plain text; bare ``{Err}``: the latest error."""

    def __init__(self, history: CellHistory) -> None:
        self._history = history

    def __getitem__(self, key: object) -> str:
        number = execution_number("Err", key)
        run = self._history.get(number)
        if run is not None and run.error is not None and not run.own:
            return run.error.text
        oldest = self._history.oldest
        failed = [run.count for run in self._history.errors()]
        hint = f" (errors were raised by {_listing(failed)})" if failed else " (no cell has raised an error)"
        if run is None and oldest is not None and number < oldest:
            return self._refuse(f"execution {number} is older than the {self._history.limit} remembered{hint}")
        return self._refuse(f"execution {number} raised no error{hint}")

    @staticmethod
    def _refuse(message: str) -> str:
        raise InterpolationError(message)

    def prompt_text(self, expr: str, budget: int) -> str:
        run = self._history.last_error()
        if run is None or run.error is None:
            raise InterpolationError(f"{{{expr}}}: no cell has raised an error since the extension was loaded")
        return run.error.text
