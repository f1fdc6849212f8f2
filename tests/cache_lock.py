"""Another process holding the reply cache's SQLite write lock, for the cache-failure tests.

A real second process (not a second connection in this one) is what a user
meets when two kernels share one cache folder; the holder says "locked" once it
has the lock and lets go at the end of its input or after ``seconds``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute(
    "CREATE TABLE IF NOT EXISTS replies "
    "(key TEXT PRIMARY KEY, reply TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)"
)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT OR REPLACE INTO replies VALUES ('held', '{}', '', 0)")
print("locked", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline and sys.stdin.readline():
    pass
"""


@contextmanager
def lock_held(path: Path, seconds: float = 60.0) -> Iterator[None]:
    """Another process holds the write lock of the SQLite file at ``path`` inside the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path), str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder lets go at end of input
        holder.wait(timeout=30)
