"""What the notebook ran: each execution's source and, when it failed, its error as plain text.

Why our own record: ``%deepseek fix``, ``{Err[n]}`` and ``--context N`` need the
failing cell and its traceback after the fact. jupyter-ai gets them by taking
over IPython's exception handler (``set_custom_exc``), which changes how every
error in the notebook is shown and is known to break ``%xmode`` and friends.
Here the IPython layer only *listens* (``post_run_cell``) and hands each result
to :class:`CellHistory`; this module knows nothing of IPython.

Errors are formatted once, when they happen, with :mod:`traceback` (plain
text, no ANSI colours), and only the text is kept: holding the exception
would keep its frames, and every local variable in them, alive. Everything
stored is bounded, so a notebook running for days keeps a few megabytes at most.
"""

from __future__ import annotations

import re
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

from deepseek_magic.core.errors import strip_controls

__all__ = [
    "ERROR_CAP",
    "HISTORY_LIMIT",
    "SOURCE_CAP",
    "CellError",
    "CellHistory",
    "CellRun",
    "clip_middle",
    "format_error",
    "plain_text",
]

#: Characters of one cell's source that are kept (and sent): the user's own code, so generous.
SOURCE_CAP = 20_000
#: Characters of one formatted traceback that are kept; the middle goes first (the end names the error).
ERROR_CAP = 6_000
#: Executions remembered; older ones are forgotten (``{Err[n]}`` then says so).
HISTORY_LIMIT = 500
_MESSAGE_CAP = 300

#: CSI (colours, cursor moves), OSC (titles, hyperlinks, clipboard) and two-character escape sequences.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def plain_text(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (newlines and tabs kept).

    Tracebacks and outputs can carry colour codes (IPython's own, a library's
    logging); a model reads them as noise, and a terminal echoing them back obeys them.
    """
    return strip_controls(_ANSI.sub("", text))


def clip_middle(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters by leaving out its middle, saying how much went.

    A traceback's first frames say where the call started and its last lines
    what failed; the repeated middle (deep recursion, long chains) matters least.
    """
    if len(text) <= limit:
        return text
    head = max(0, limit // 3)
    tail = max(0, limit - head - 60)
    left_out = len(text) - head - tail
    return f"{text[:head]}\n… [{left_out:,} characters left out] …\n{text[len(text) - tail :]}"


@dataclass(frozen=True)
class CellError:
    """An exception a cell raised, as text: its type name, its message and the whole traceback."""

    name: str
    message: str
    text: str

    @property
    def headline(self) -> str:
        """``ZeroDivisionError: division by zero``."""
        return f"{self.name}: {self.message}" if self.message else self.name


@dataclass(frozen=True)
class CellRun:
    """One execution: its number (``In [n]``), source as typed, the frontend's cell id, and its error if any.

    ``own`` marks the extension's own cells (``%%deepseek``, ``%deepseek …``):
    their prompts and replies are in the conversation already, so context
    blocks skip them and their one-line errors are never offered for fixing.
    """

    count: int
    source: str
    cell_id: str | None = None
    error: CellError | None = None
    own: bool = False


def format_error(
    exc: BaseException,
    *,
    skip_frame: Callable[[str], bool] | None = None,
    filenames: Mapping[str, str] | None = None,
) -> CellError:
    """``exc`` and its traceback (chained causes included) as bounded plain text.

    ``skip_frame(filename)`` drops leading frames that belong to the shell
    rather than the cell (IPython's own ``run_code``); ``filenames`` renames
    compiled-cell file names (``/tmp/ipykernel_…/123.py``) to what the user
    knows (``Cell In[3]``). Never raises: a broken ``__str__`` or an odd
    traceback still yields a line.
    """
    name = type(exc).__name__
    try:
        message = " ".join(str(exc).split())
    except Exception:
        message = "(the exception's message could not be read)"
    message = plain_text(message)
    if len(message) > _MESSAGE_CAP:
        message = message[: _MESSAGE_CAP - 1] + "…"
    try:
        start = _first_kept_frame(exc.__traceback__, skip_frame)
        formatted = traceback.TracebackException(type(exc), exc, start, compact=True)
        if filenames:
            _rename_frames(formatted, filenames)
        text = "".join(formatted.format())
    except Exception:
        text = f"{name}: {message}\n"
    return CellError(name=name, message=message, text=clip_middle(plain_text(text).rstrip(), ERROR_CAP))


def _first_kept_frame(tb: TracebackType | None, skip_frame: Callable[[str], bool] | None) -> TracebackType | None:
    if skip_frame is None:
        return tb
    while tb is not None and tb.tb_next is not None and skip_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _rename_frames(formatted: traceback.TracebackException, filenames: Mapping[str, str]) -> None:
    """Give frames of compiled cells their ``Cell In[n]`` names, through chained and grouped exceptions."""
    seen: set[int] = set()
    pending = [formatted]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            renamed = filenames.get(frame.filename)
            if renamed is not None:
                frame.filename = renamed
        own_file = getattr(current, "filename", None)  # only a SyntaxError has one
        if isinstance(own_file, str) and own_file in filenames:
            current.filename = filenames[own_file]
        for linked in (current.__cause__, current.__context__, *(getattr(current, "exceptions", None) or ())):
            if linked is not None:
                pending.append(linked)


class CellHistory:
    """The last :data:`HISTORY_LIMIT` executions, by execution number."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self._runs: deque[CellRun] = deque(maxlen=limit)
        self.limit = limit

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[CellRun]:
        return iter(self._runs)

    def add(self, run: CellRun) -> None:
        """Remember ``run`` (its source clipped to :data:`SOURCE_CAP`)."""
        if len(run.source) > SOURCE_CAP:
            clipped = run.source[:SOURCE_CAP] + f"\n# … [{len(run.source) - SOURCE_CAP:,} more characters]"
            run = CellRun(run.count, clipped, run.cell_id, run.error, run.own)
        self._runs.append(run)

    def clear(self) -> None:
        self._runs.clear()

    def get(self, count: int) -> CellRun | None:
        """Execution ``count``, if it is still remembered (the newest run with that number wins)."""
        return next((run for run in reversed(self._runs) if run.count == count), None)

    @property
    def oldest(self) -> int | None:
        """The smallest execution number still remembered."""
        return self._runs[0].count if self._runs else None

    def errors(self) -> list[CellRun]:
        """Runs that failed, oldest first (the extension's own cells never count)."""
        return [run for run in self._runs if run.error is not None and not run.own]

    def last_error(self) -> CellRun | None:
        """The latest run that failed."""
        return next((run for run in reversed(self._runs) if run.error is not None and not run.own), None)

    def recent(self, count: int, *, exclude: frozenset[int] = frozenset()) -> list[CellRun]:
        """The last ``count`` cells run, oldest first.

        The extension's own cells and the execution numbers in ``exclude`` are
        skipped, and a cell run several times counts once, with its latest run
        (the same frontend cell id, or the same source when there is none).
        """
        chosen: list[CellRun] = []
        seen: set[str] = set()
        for run in reversed(self._runs):
            if len(chosen) >= count:
                break
            if run.own or run.count in exclude:
                continue
            identity = f"id:{run.cell_id}" if run.cell_id else f"src:{run.source}"
            if identity in seen:
                continue
            seen.add(identity)
            chosen.append(run)
        chosen.reverse()
        return chosen
