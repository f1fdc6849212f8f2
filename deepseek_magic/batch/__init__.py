"""Concurrent batches: one prompt template over the rows of a table, answers back as a DataFrame.

The public names live here; :mod:`.runner` sends the rows (below the session
layer: it is handed a session and never imports it), :mod:`.loop` is the
event-loop thread it runs on, :mod:`.limiter` paces rows under 429s,
and :mod:`.results` turns rows into a DataFrame. Running it per partition of
a Dask DataFrame builds sessions on the workers, so that part lives one layer
up, in :mod:`deepseek_magic.conversation.dask_batch`.
"""

from __future__ import annotations

from deepseek_magic.batch.limiter import AdaptiveLimiter
from deepseek_magic.batch.loop import LoopThread, shared_loop
from deepseek_magic.batch.results import (
    USAGE_COLUMNS,
    BatchNeedsConfirmation,
    BatchPreview,
    BatchProgress,
    RowResult,
    _frame,
    batch_meta,
)
from deepseek_magic.batch.runner import DEFAULT_CONCURRENCY, run_batch

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
    "run_batch",
    "shared_loop",
]
