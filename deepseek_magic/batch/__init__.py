"""Concurrent batches: one prompt template over the rows of a table, answers back as a DataFrame.

The public names live here; :mod:`.runner` sends the rows (below the session
layer: it is handed a session and never imports it), :mod:`.loop` is the
event-loop thread it runs on, :mod:`.limiter` paces rows under 429s,
:mod:`.results` turns rows into a DataFrame, and :mod:`.dask` runs it per
partition of a Dask DataFrame (it builds sessions on the workers).
"""

from __future__ import annotations

from .dask import batch_partition, run_dask_batch
from .limiter import AdaptiveLimiter
from .loop import LoopThread, shared_loop
from .results import (
    USAGE_COLUMNS,
    BatchNeedsConfirmation,
    BatchPreview,
    BatchProgress,
    RowResult,
    _frame,
    batch_meta,
)
from .runner import DEFAULT_CONCURRENCY, run_batch

__all__ = [
    "DEFAULT_CONCURRENCY",
    "USAGE_COLUMNS",
    "AdaptiveLimiter",
    "BatchNeedsConfirmation",
    "BatchPreview",
    "BatchProgress",
    "LoopThread",
    "RowResult",
    "_frame",
    "batch_meta",
    "batch_partition",
    "run_batch",
    "run_dask_batch",
    "shared_loop",
]
