"""Keys of running Dask batches, by token, in this process (never in a task graph).

Its own module so that :mod:`.dask_batch` (reads it) and :mod:`.dask_cluster`
(its worker plugin fills it) share it without importing each other.
"""

from __future__ import annotations

from pydantic import SecretStr

#: Set by ``Session.batch`` in the notebook's process (Dask's threaded scheduler runs there) or, on workers,
#: by the ``send_key=True`` worker plugin.
KEYS: dict[str, SecretStr] = {}

__all__ = ["KEYS"]
