"""What a batch gives back: the row results, the cost preview, progress reporting and the DataFrame."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from deepseek_magic.core.errors import (
    ConfigError,
    DeepSeekError,
)

if TYPE_CHECKING:
    import pandas as pd


#: Columns every result has after the reply (or the JSON fields).
USAGE_COLUMNS = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cost", "cached", "error")


class BatchNeedsConfirmation(DeepSeekError):
    """The estimated cost is above ``confirm_above``; nothing was sent."""

    def __init__(self, message: str, preview: BatchPreview) -> None:
        super().__init__(message)
        self.preview = preview


@dataclass(frozen=True)
class BatchPreview:
    """What a batch is about to do, known before anything is sent."""

    total: int
    to_send: int
    cached: int
    resumed: int
    failed: int
    #: Upper estimate in USD for the rows to send; ``None`` when no price is known.
    estimate: float | None
    concurrency: int

    def describe(self) -> str:
        """One line for the progress display and the confirmation message."""
        parts = [f"{self.to_send:,} of {self.total:,} rows to send"]
        if self.cached:
            parts.append(f"{self.cached:,} cached")
        if self.resumed:
            parts.append(f"{self.resumed:,} already done")
        if self.failed:
            parts.append(f"{self.failed:,} failed before sending")
        cost = "unknown cost" if self.estimate is None else f"up to ~${self.estimate:,.4f}"
        return f"{', '.join(parts)}; {cost} at concurrency {self.concurrency}"


@dataclass(frozen=True)
class RowResult:
    """One row's outcome, as it goes into the result frame (small: no reasoning text is kept)."""

    value: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = 0.0
    cached: bool = False
    error: str | None = None


class BatchProgress(Protocol):
    """What the batch reports to (see :mod:`deepseek_magic.ui.batch_progress`).

    A reporter may also have ``start(preview: BatchPreview)``, called once
    before sending. A plain callable ``(done, total, errors, tokens, cost)``
    works too.
    """

    def update(self, done: int, total: int, errors: int, tokens: int, cost: float) -> None: ...

    def close(self) -> None: ...


ProgressArg = BatchProgress | Callable[[int, int, int, int, float], Any] | None


def _frame(results: Sequence[RowResult], index: Any, json_mode: bool) -> pd.DataFrame:
    import pandas as pd

    columns: dict[str, Any] = {}
    if json_mode:
        values = [r.value.model_dump() if isinstance(r.value, BaseModel) else r.value for r in results]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, Mapping) for v in present):
            fields: dict[str, None] = {}
            for value in present:
                fields.update(dict.fromkeys(str(key) for key in value))
            for name in fields:
                column = f"data.{name}" if name in USAGE_COLUMNS else name
                columns[column] = [v.get(name) if isinstance(v, Mapping) else None for v in values]
        else:
            columns["data"] = pd.Series(values, dtype=object, index=index)
    else:
        columns["reply"] = [r.value for r in results]
    columns["prompt_tokens"] = pd.Series([r.prompt_tokens for r in results], dtype="int64", index=index)
    columns["completion_tokens"] = pd.Series([r.completion_tokens for r in results], dtype="int64", index=index)
    columns["reasoning_tokens"] = pd.Series([r.reasoning_tokens for r in results], dtype="int64", index=index)
    columns["cost"] = pd.Series([r.cost for r in results], dtype="float64", index=index)
    columns["cached"] = pd.Series([r.cached for r in results], dtype="bool", index=index)
    columns["error"] = pd.Series([r.error for r in results], dtype=object, index=index)
    frame: pd.DataFrame = pd.DataFrame(columns, index=index)
    return frame


# ------------------------------------------------------------------------- dask


def _schema_fields(schema: Any) -> list[str] | None:
    if schema is None:
        return None
    from deepseek_magic.features.structured import json_schema_of

    properties = json_schema_of(schema).get("properties")
    return [str(name) for name in properties] if isinstance(properties, dict) else None


def batch_meta(*, json_mode: bool = False, schema: Any = None, index: Any = None) -> pd.DataFrame:
    """An empty frame with the columns and dtypes :func:`run_batch` returns (Dask's ``meta``).

    In JSON mode the columns come from the schema's properties; without a
    schema they cannot be known before the replies arrive, so the caller
    must give ``meta`` itself.
    """
    import pandas as pd

    columns: dict[str, Any] = {}
    if json_mode or schema is not None:
        fields = _schema_fields(schema)
        if fields is None:
            raise ConfigError(
                "in JSON mode without a schema the columns are unknown until the replies arrive; "
                "pass meta= (an empty DataFrame with the expected columns) or a schema"
            )
        for name in fields:
            columns[f"data.{name}" if name in USAGE_COLUMNS else name] = pd.Series([], dtype=object)
    else:
        columns["reply"] = pd.Series([], dtype=object)
    for name in USAGE_COLUMNS[:3]:
        columns[name] = pd.Series([], dtype="int64")
    columns["cost"] = pd.Series([], dtype="float64")
    columns["cached"] = pd.Series([], dtype="bool")
    columns["error"] = pd.Series([], dtype=object)
    frame: pd.DataFrame = pd.DataFrame(columns)
    if index is not None:
        frame.index = index[:0]
    return frame
