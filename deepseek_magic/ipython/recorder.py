"""Listening to IPython's own run results: the execution history ``fix``, ``{Err[n]}`` and ``--context`` read.

The recorder is called from the ``post_run_cell`` event, which hands over
IPython's :class:`~IPython.core.interactiveshell.ExecutionResult`: the raw cell,
its execution number, its cell id, and ``error_in_exec`` / ``error_before_exec``
(a syntax error). IPython's exception handler is never replaced
(``set_custom_exc`` would change how every error in the notebook is shown).

Sources come from IPython's raw input history (so cells run before the
extension loaded are there too), values from ``Out``, printed text from the
output history IPython keeps since 9.x (older IPython: the ``Out`` value only).
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepseek_magic.features.cell_history import CellHistory, CellRun, clip_middle, format_error, plain_text
from deepseek_magic.features.cell_refs import MISSING, ErrorRefs, InputRefs, OutputRefs

__all__ = ["ExecutionRecorder", "is_own_cell"]

_OWN_CELL = re.compile(r"^\s*%{1,2}deepseek(?![\w])")


def is_own_cell(source: str) -> bool:
    """True for the extension's own cells: ``%%deepseek …`` and ``%deepseek …``."""
    return _OWN_CELL.match(source) is not None


def _ipython_directory() -> str:
    import IPython

    return str(Path(IPython.__file__).resolve().parent)


class ExecutionRecorder:
    """The executions of one shell, recorded from ``post_run_cell``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.history = CellHistory()
        self._ipython_dir = _ipython_directory()

    # ------------------------------------------------------------- recording

    def record(self, result: Any) -> None:
        """Remember one execution (skips silent runs and runs kept out of history: their number is not theirs).

        Never raises: a callback failing in ``post_run_cell`` would print IPython's "Error in callback"
        traceback under the user's own cell.
        """
        try:
            self._record(result)
        except Exception:
            return

    def _record(self, result: Any) -> None:
        info = getattr(result, "info", None)
        count = getattr(result, "execution_count", None)
        if info is None or not isinstance(count, int) or not getattr(info, "store_history", False):
            return
        if getattr(info, "silent", False):
            return
        source = getattr(info, "raw_cell", None) or ""
        own = is_own_cell(source)
        failure = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        error = None
        if failure is not None and not own:
            error = format_error(failure, skip_frame=self._shell_frame, filenames=self._cell_filenames())
        self.history.add(CellRun(count, source, getattr(info, "cell_id", None) or None, error, own))

    def _shell_frame(self, filename: str) -> bool:
        return filename.startswith(self._ipython_dir)

    def _cell_filenames(self) -> dict[str, str]:
        """Compiled-cell file names → ``Cell In[n]``, as IPython's own tracebacks call them."""
        mapping = getattr(getattr(self.shell, "compile", None), "_filename_map", None)
        if not isinstance(mapping, Mapping):
            return {}
        return {name: f"Cell In[{number}]" for name, number in mapping.items() if isinstance(number, int)}

    # --------------------------------------------------------------- reading

    @property
    def last_count(self) -> int:
        """The number of the latest execution (IPython's counter is one ahead)."""
        return max(0, int(getattr(self.shell, "execution_count", 1)) - 1)

    def source(self, number: int) -> str | None:
        """The source of execution ``number`` as typed, or ``None``."""
        raw = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None)
        if isinstance(raw, list) and 0 < number < len(raw):
            return str(raw[number])
        run = self.history.get(number)
        return run.source if run is not None else None

    def _out(self) -> Mapping[int, Any]:
        out = self.shell.user_ns.get("Out") if self.shell is not None else None
        return out if isinstance(out, Mapping) else {}

    def value(self, number: int) -> Any:
        """What execution ``number`` returned (IPython's ``Out[n]``), or :data:`MISSING`."""
        return self._out().get(number, MISSING)

    def output_numbers(self) -> list[int]:
        return sorted(n for n in self._out() if isinstance(n, int))

    def output_text(self, number: int, limit: int) -> str:
        """What execution ``number`` printed, displayed and returned, as plain text of at most ``limit`` characters."""
        outputs = getattr(getattr(self.shell, "history_manager", None), "outputs", None)
        text = ""
        if isinstance(outputs, Mapping) and number in outputs:  # IPython 9: streams, displays and results
            pieces: list[str] = []
            for item in outputs[number]:
                bundle = getattr(item, "bundle", {}) or {}
                if getattr(item, "output_type", "") in ("out_stream", "err_stream"):
                    pieces.append("".join(str(part) for part in bundle.get("stream", [])))
                else:
                    shown = bundle.get("text/plain", "")
                    shown = "".join(shown) if isinstance(shown, list) else str(shown)
                    if pieces and not pieces[-1].endswith("\n"):
                        pieces.append("\n")
                    pieces.append(shown + "\n")
            text = "".join(pieces)
        elif (value := self.value(number)) is not MISSING:
            from deepseek_magic.features.interpolation import render_value

            text = render_value(value, budget=limit)
        return clip_middle(plain_text(text).strip("\n"), limit)

    def prompt_namespace(self, user_ns: Mapping[str, Any], budget: int) -> Mapping[str, Any]:
        """``user_ns`` with ``In``, ``Out`` and ``Err`` read from the execution history.

        ``Err`` stays the user's own when a variable of that name exists.
        """
        overlay: dict[str, Any] = {
            "In": InputRefs(self.source, lambda: self.last_count),
            "Out": OutputRefs(self.value, self.output_text, self.output_numbers, budget),
        }
        if "Err" not in user_ns:
            overlay["Err"] = ErrorRefs(self.history)
        return ChainMap(overlay, dict(user_ns) if not isinstance(user_ns, dict) else user_ns)
