"""Brace-safe interpolation of notebook variables into prompt text.

jupyter-ai runs the cell through ``str.format_map``, so any pasted code, JSON or
f-string containing braces either breaks the prompt or gets silently rewritten
(jupyterlab/jupyter-ai#27, #967). Here only a brace that is *exactly* a simple
reference to an existing variable is replaced:

* ``{name}``, ``{name.attr}``, ``{name[0]}``, ``{name["key"]}``, ``{name['key']}``
  and chains of these (``{df.columns[0]}``), with no spaces, when the root
  ``name`` exists in the namespace;
* ``{{expr}}`` (an escaped reference) becomes the literal text ``{expr}``.

Every other brace stays exactly as typed: ``{x: 1}``, ``{"a": {"b": 1}}``,
``{x!r}``, ``{ name }``, ``{}``, ``{0}``, unbalanced braces, Jinja's
``{{ user }}`` (note the spaces) and references to names that do not exist.
Escapes are deliberately scoped to ``{{reference}}`` rather than every ``{{``
and ``}}`` as ``str.format`` does: a general rule would turn the ``}}`` that
closes nested JSON or dict literals into ``}`` and corrupt pasted data.

No ``eval``: attributes are read with ``getattr`` (never names starting with
``_``) and items with ``[]`` using an int or quoted-string key. Values are
rendered by :func:`render_value` into compact, bounded text, so interpolating a
10-million-row DataFrame costs a few thousand characters, not the context
window. Nothing here imports IPython, pandas or numpy: pandas and numpy objects
are recognised only if their module is already loaded (an object of a type
cannot exist before its module is imported).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from deepseek_magic.core.errors import DeepSeekError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STR_CAP", "InterpolationError", "interpolate", "render_value"]

STR_CAP = 100_000
"""Plain strings are inserted whole up to this many characters: the user put the text there on purpose."""

_CELL_CAP = 200  # a long text cell in a table preview is cut here, so more rows fit
_MAX_ROWS = 100  # a preview never shows more rows than this, however large the budget
_MAX_DEPTH = 12  # nesting deeper than this in a list/dict renders as "…"
_MESSAGE_CAP = 300  # the reason in an error message stays one readable line

_NAME = r"[^\W\d]\w*"
_KEY = r"\[(?:-?[0-9]+|\"[^\"\\\n]*\"|'[^'\\\n]*')\]"
_EXPR = rf"{_NAME}(?:\.{_NAME}|{_KEY})*"
# An escaped reference first, so "{{name}}" is never read as "{" + "{name}" + "}".
_PLACEHOLDER = re.compile(rf"\{{\{{({_EXPR})\}}\}}|\{{({_EXPR})\}}")
_STEP = re.compile(rf"\.({_NAME})|\[(-?[0-9]+)\]|\[\"([^\"\\\n]*)\"\]|\['([^'\\\n]*)'\]")
_ROOT = re.compile(_NAME)


class InterpolationError(DeepSeekError, ValueError):
    """A reference to an existing variable could not be resolved; the message is one line naming it."""


def interpolate(text: str, namespace: Mapping[str, Any], *, budget: int = 4000) -> str:
    """``text`` with each reference to an existing variable replaced by its rendered value.

    Raises only :class:`InterpolationError` (for any input), so the magic can turn
    every failure into a one-line usage error. ``budget`` bounds each inserted
    value (see :func:`render_value`).
    """
    if not isinstance(text, str):
        raise InterpolationError(f"cell text must be a string, not {type(text).__name__}")

    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped is not None:
            return "{" + escaped + "}"
        expr = match.group(2)
        root_match = _ROOT.match(expr)
        root = root_match.group() if root_match else expr
        if _is_dunder(root) or not _has_name(namespace, root):
            return match.group(0)
        value = _resolve(expr, root, namespace)
        try:
            return render_value(value, budget=budget)
        except Exception as exc:  # render_value guards itself; this is the last line of defence
            raise InterpolationError(f"{{{expr}}}: could not be rendered: {_reason(exc)}") from None

    try:
        return _PLACEHOLDER.sub(replace, text)
    except InterpolationError:
        raise
    except Exception as exc:  # e.g. a namespace whose __getitem__ misbehaves
        raise InterpolationError(f"interpolation failed: {_reason(exc)}") from None


def _is_dunder(name: str) -> bool:
    # ``__name__`` and friends exist in every IPython namespace; pasted code such as
    # ``f"{__name__}"`` must survive, so dunder roots are never substituted.
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _has_name(namespace: Mapping[str, Any], name: str) -> bool:
    try:
        return name in namespace
    except Exception:
        return False


def _resolve(expr: str, root: str, namespace: Mapping[str, Any]) -> Any:
    """Follow ``expr`` from ``namespace[root]`` with getattr and ``[]`` only (never eval)."""
    try:
        value = namespace[root]
    except Exception as exc:
        raise InterpolationError(f"{{{expr}}}: {_reason(exc)}") from None
    for step in _STEP.finditer(expr, len(root)):
        attr, index, double_quoted, single_quoted = step.groups()
        if attr is not None:
            if attr.startswith("_"):
                raise InterpolationError(
                    f"{{{expr}}}: attribute {attr!r} starts with '_' (private and dunder attributes are not read)"
                )
            try:
                value = getattr(value, attr)
            except Exception as exc:
                raise InterpolationError(f"{{{expr}}}: {_reason(exc)}") from None
            continue
        key: int | str
        try:
            key = int(index) if index is not None else (double_quoted if double_quoted is not None else single_quoted)
            value = value[key]
        except Exception as exc:
            raise InterpolationError(f"{{{expr}}}: {_lookup_reason(exc, value, step.group())}") from None
    return value


def _lookup_reason(exc: Exception, container: Any, subscript: str) -> str:
    if isinstance(exc, KeyError):
        return f"no key {subscript[1:-1]} in {type(container).__name__}"
    if isinstance(exc, IndexError):
        try:
            return f"index {subscript[1:-1]} is out of range (length {len(container)})"
        except Exception:
            return f"index {subscript[1:-1]} is out of range"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    """The exception as one short line: notebooks show it in place of a traceback."""
    try:
        message = " ".join(str(exc).split())
    except Exception:
        message = ""
    if not message:
        return type(exc).__name__
    return _clip(message, _MESSAGE_CAP)


# --------------------------------------------------------------------------- rendering


def render_value(value: Any, *, budget: int = 4000) -> str:
    """Compact, deterministic text for ``value`` that fits in ``budget`` characters.

    The model needs a faithful sketch of the data, not a dump: a DataFrame
    becomes its shape, dtypes and first rows as CSV; containers become compact
    JSON with dropped items noted; anything else its ``repr``. Plain strings are
    the exception: they are inserted as-is up to :data:`STR_CAP`, because the
    user chose that text. Never raises: a broken ``__repr__`` yields a placeholder.
    """
    budget = max(0, budget)
    try:
        return _render(value, budget)
    except Exception:
        return _clip(_safe_repr(value), budget)


def _render(value: Any, budget: int) -> str:
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.generic):  # before float: np.float64 is a float whose repr says "np.float64(…)"
            return _render(value.item(), budget)
        if isinstance(value, numpy.ndarray):
            return _render_array(value, budget)
    if isinstance(value, str):
        return _clip(value, STR_CAP)
    if value is None or isinstance(value, (bool, int, float, complex)):
        return _clip(repr(value), budget)
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if isinstance(value, pandas.DataFrame):
            return _render_frame(value, budget)
        if isinstance(value, pandas.Series):
            return _render_series(value, budget)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _render_json(value, budget)
    return _clip(_safe_repr(value), budget)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    widest = f"… [truncated {len(text):,} chars]"
    if limit <= len(widest):
        return text[:limit]
    keep = limit - len(widest)
    keep = limit - len(f"… [truncated {len(text) - keep:,} chars]")  # fewer cut chars can only shorten the note
    return text[:keep] + f"… [truncated {len(text) - keep:,} chars]"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} object (repr failed)>"


# --- pandas ------------------------------------------------------------------------


def _render_frame(frame: pd.DataFrame, budget: int) -> str:
    rows, cols = frame.shape
    header = f"DataFrame: {rows:,} rows × {cols:,} columns"
    pairs = [f"{name}: {dtype}" for name, dtype in frame.dtypes.items()]
    dtypes = _bounded_join("dtypes: ", pairs, max(40, budget // 3), "columns")
    return _with_table(frame, [header, dtypes], budget, header_row=True)


def _render_series(series: pd.Series[Any], budget: int) -> str:
    label = "Series" if series.name is None else f"Series {str(series.name)!r}"
    header = f"{label}: {len(series):,} values, dtype {series.dtype}"
    return _with_table(series.to_frame(name="value"), [header], budget, header_row=False)


def _bounded_join(prefix: str, items: list[str], limit: int, noun: str) -> str:
    """``prefix`` + items joined by ", ", ending with "… (N more <noun>)" where ``limit`` would be passed."""
    line = prefix
    for count, item in enumerate(items):
        piece = item if count == 0 else ", " + item
        left_after = len(items) - count - 1
        tail = f", … ({left_after:,} more {noun})" if left_after else ""
        if len(line) + len(piece) + len(tail) > limit:
            return line + (", " if count else "") + f"… ({len(items) - count:,} more {noun})"
        line += piece
    return line


def _with_table(frame: pd.DataFrame, lines: list[str], budget: int, *, header_row: bool) -> str:
    """``lines``, then as many leading rows (and columns) of ``frame`` as CSV as fit in ``budget``.

    A wide frame is narrowed until a handful of rows fit, because a few complete
    records tell the model more than one very long one.
    """
    import pandas as pd  # already imported: ``frame`` exists

    rows, cols = frame.shape
    index = frame.index
    keep_index = not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None)
    widest_note = f"(first {rows:,} of {rows:,} rows; first {cols:,} of {cols:,} columns)"
    room = budget - sum(len(line) + 1 for line in lines) - len(widest_note) - 1
    # Each column costs at least two characters, so more than room // 2 can never fit.
    sample = _shorten_cells(frame.iloc[: min(rows, _MAX_ROWS), : max(1, min(cols, room // 2))])

    def csv(n: int, k: int) -> str:
        text: str = sample.iloc[:n, :k].to_csv(index=keep_index, header=header_row, lineterminator="\n")
        return text.rstrip("\n")

    def most(low: int, high: int, fits: Callable[[int], bool]) -> int:
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        return low

    shown_rows, shown_cols, table = 0, sample.shape[1], ""
    if room > 0 and rows == 0:
        table = csv(0, shown_cols)
    elif room > 0:
        target = min(rows, _MAX_ROWS, 5)
        if len(csv(target, shown_cols)) > room:
            shown_cols = max(1, most(0, sample.shape[1], lambda k: len(csv(target, k)) <= room))
        shown_rows = most(0, min(rows, _MAX_ROWS), lambda n: len(csv(n, shown_cols)) <= room)
        table = csv(shown_rows, shown_cols) if shown_rows else ""
    notes = []
    if rows and not shown_rows:
        notes.append(f"{rows:,} rows not shown: the budget is too small")
    elif shown_rows < rows:
        notes.append(f"first {shown_rows:,} of {rows:,} rows")
    if table and shown_cols < cols:
        notes.append(f"first {shown_cols:,} of {cols:,} columns")
    parts = [*lines, table] if table else list(lines)
    if notes:
        parts.append("(" + "; ".join(notes) + ")")
    return _clip("\n".join(parts), budget)


def _shorten_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose long text cells are cut, so one essay-length cell doesn't crowd out every other row."""
    shortened: pd.DataFrame = frame.copy()
    for position in range(shortened.shape[1]):
        column = shortened.iloc[:, position]
        if column.dtype == object or str(column.dtype).startswith("str"):  # object, "string" and pandas 3's "str"
            shortened.isetitem(position, column.map(_short_cell).to_numpy(dtype=object))
    return shortened


def _short_cell(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CELL_CAP:
        return value[: _CELL_CAP - 1] + "…"
    return value


# --- numpy -------------------------------------------------------------------------


def _render_array(array: Any, budget: int) -> str:
    numpy = sys.modules["numpy"]
    header = f"ndarray: shape {tuple(array.shape)}, dtype {array.dtype}, {array.size:,} values"
    room = budget - len(header) - 1
    body = ""
    attempts: list[tuple[int, int]] = [(sys.maxsize, 3)] if array.size <= budget else []
    attempts += [(0, edge) for edge in (10, 5, 3, 2, 1)]
    for threshold, edge in attempts:
        body = numpy.array2string(array, threshold=threshold, edgeitems=edge, max_line_width=120, separator=", ")
        if len(body) <= room:
            break
    return _clip(f"{header}\n{body}", budget)


# --- containers --------------------------------------------------------------------


class _TooBig(Exception):
    """The shrunk structure already has more nodes than the budget has characters."""


def _render_json(value: Any, budget: int) -> str:
    """Compact JSON keeping, in every container, the most leading items that fit in ``budget``."""
    sorted_sets: dict[int, list[Any]] = {}  # sorting a big set once, not once per attempt

    def attempt(per_container: int, string_limit: int, node_limit: int = budget) -> str | None:
        shrinker = _Shrinker(per_container, string_limit, node_limit, sorted_sets)
        try:
            text = json.dumps(shrinker.shrink(value, 0, frozenset()), **_JSON_STYLE)
        except _TooBig:
            return None
        return text if len(text) <= budget or node_limit != budget else None

    whole = attempt(budget, budget)
    if whole is not None:
        return whole
    string_cap = max(20, budget // 4)
    low, high = 0, budget
    while low < high:  # the largest items-per-container that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if attempt(middle, string_cap) is not None else (low, middle - 1)
    text = attempt(low, string_cap) if low else None
    if text is None:
        text = attempt(1, 20) or attempt(1, 20, sys.maxsize) or _safe_repr(value)
    return _clip(text, budget)


_JSON_STYLE: dict[str, Any] = {"default": str, "ensure_ascii": False, "separators": (", ", ": ")}


class _Shrinker:
    """Makes a JSON-ready copy keeping ``per`` leading items of each container and ``string_limit`` chars per string.

    ``node_limit`` stops the walk early: a copy with more nodes than the budget
    has characters cannot fit, and a huge or self-similar structure must not be
    walked in full on every attempt.
    """

    def __init__(self, per: int, string_limit: int, node_limit: int, sorted_sets: dict[int, list[Any]]) -> None:
        self.per = per
        self.string_limit = string_limit
        self.node_limit = node_limit
        self.nodes = 0
        self.sorted_sets = sorted_sets

    def shrink(self, value: Any, depth: int, path: frozenset[int]) -> Any:
        self.nodes += 1
        if self.nodes > self.node_limit:
            raise _TooBig
        if isinstance(value, str):
            return value if len(value) <= self.string_limit else _clip(value, self.string_limit)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        numpy = sys.modules.get("numpy")
        is_array = numpy is not None and isinstance(value, numpy.ndarray)
        if numpy is not None and (isinstance(value, numpy.generic) or (is_array and value.ndim == 0)):
            return self.shrink(value.item(), depth, path)
        if not (is_array or isinstance(value, (Mapping, list, tuple, set, frozenset))):
            return _clip(str(value), self.string_limit)
        if depth >= _MAX_DEPTH:
            return "…"
        if id(value) in path:
            return "<cycle>"
        path = path | {id(value)}
        per = self.per
        if isinstance(value, Mapping):
            shrunk: dict[str, Any] = {}
            for count, (key, item) in enumerate(value.items()):
                if count >= per:
                    shrunk["…"] = f"({len(value) - per:,} more items)"
                    break
                name = key if isinstance(key, str) else _clip(str(key), self.string_limit)
                shrunk[name] = self.shrink(item, depth + 1, path)
            return shrunk
        if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a namedtuple keeps its field names
            return self.shrink(cast(Any, value)._asdict(), depth + 1, path)
        items: Any = value
        if isinstance(value, (set, frozenset)):
            items = self.sorted_sets.get(id(value))
            if items is None:
                items = self.sorted_sets[id(value)] = _sorted_set(value)
        result = [self.shrink(items[position], depth + 1, path) for position in range(min(len(items), per))]
        if len(items) > per:
            result.append(f"… ({len(items) - per:,} more items)")
        return result


def _sorted_set(value: set[Any] | frozenset[Any]) -> list[Any]:
    """Set items in a stable order, so the same notebook sends the same prompt (and hits the cache)."""
    kinds = {type(item) for item in value}
    if kinds == {str} or kinds <= {int, bool}:  # total orders: fast and natural (floats may hold NaN)
        return sorted(value)
    try:
        return sorted(value, key=lambda item: (type(item).__name__, repr(item)))
    except Exception:
        return list(value)
