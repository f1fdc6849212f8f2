"""Concurrent batches: one prompt template over the rows of a table, answers back as a DataFrame.

The public names live here; :mod:`.runner` sends the rows (below the session
layer: it is handed a session and never imports it) and :mod:`.dask` runs it
per partition of a Dask DataFrame (it builds sessions on the workers).
"""

from __future__ import annotations

from .dask import batch_partition, run_dask_batch
from .runner import (
    DEFAULT_CONCURRENCY,
    USAGE_COLUMNS,
    AdaptiveLimiter,
    BatchNeedsConfirmation,
    BatchPreview,
    BatchProgress,
    LoopThread,
    RowResult,
    _frame,
    batch_meta,
    run_batch,
    shared_loop,
)

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
