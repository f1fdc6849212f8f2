"""A reply cache in one SQLite file (stdlib only), shared by batches and re-run cells.

Why a cache at all: a notebook is re-run from the top again and again, and a
batch of a thousand rows is re-run after fixing one column. Paying (and
waiting) for the same answer twice buys nothing, so a finished reply is kept
under a key that covers everything that shapes it.

What the key covers: the provider, the endpoint URL, the headers sent (minus
``Accept`` and the credentials, which are added later by the client and never
reach this module) and the exact JSON body the provider would send, with the
fields that only say *how* the reply is delivered removed by the provider
itself (:class:`CacheKeyed`: this module knows no provider's body fields).
So a streamed cell and a non-streamed batch row share an entry, while a
change of model, temperature, seed, system prompt or any other parameter
is a different key. The API key is never part of the key and is never
stored.

What is never stored: partial, interrupted or failed replies (``put`` ignores
them), so a cached answer is always one the model finished.

Why SQLite with WAL: one file, no server, safe for several threads of a batch
and for several processes (Dask workers on one machine) writing at once.
A damaged file must never break the user's cell: it is moved aside and a new
one is started, with a warning.

The cache can never break or stall a cell: SQLite waits at most
:data:`BUSY_TIMEOUT` for a lock another process holds (not 30 s, deaf to
Ctrl-C), and any failure to open or write (a read-only directory, a file where
the directory should be, a lock held, a full disk) turns the cache off for the
rest of the process with one warning. Replies are then simply not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, cast, runtime_checkable

from deepseek_magic.core.events import Reply
from deepseek_magic.core.records import saved_reply
from deepseek_magic.providers import ChatRequest, get_provider

__all__ = ["CACHE_DIR_VARIABLE", "ReplyCache", "cache_key", "default_cache", "default_cache_path"]

CACHE_DIR_VARIABLE = "DEEPSEEK_MAGIC_CACHE_DIR"
CACHE_FILE = "replies.sqlite"
#: Seconds SQLite waits for another connection's lock before giving up (then the cache turns itself off).
BUSY_TIMEOUT = 0.1
#: Bumped when the key recipe changes, so old entries simply stop matching.
KEY_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$DEEPSEEK_MAGIC_CACHE_DIR/replies.sqlite``, else the XDG cache dir (``~/.cache/deepseek-magic``)."""
    explicit = os.environ.get(CACHE_DIR_VARIABLE)
    if explicit:
        return Path(explicit).expanduser() / CACHE_FILE
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "deepseek-magic" / CACHE_FILE


@runtime_checkable
class CacheKeyed(Protocol):
    """Optional provider method: the body as far as it decides the reply.

    Why a seam: only the provider knows which of its body fields change how a
    reply is *delivered* (streamed or not, a fresh task id per call, async
    delivery) rather than what it *says*; the cache must not know any
    provider's wire format. A provider without it is keyed on its whole body.
    The method returns a copy and leaves ``body`` untouched.
    """

    def cache_body(self, body: Any) -> Any: ...


_KEYED: dict[type[Any], bool] = {}


def _canonical_body(provider: object, body: Any) -> Any:
    # The runtime protocol check is remembered per class: it costs ~50 µs, once per batch row otherwise.
    kind = type(provider)
    keyed = _KEYED.get(kind)
    if keyed is None:
        keyed = _KEYED[kind] = isinstance(provider, CacheKeyed)
    return cast(CacheKeyed, provider).cache_body(body) if keyed else body


def cache_key(request: ChatRequest) -> str:
    """The sha256 hex key of ``request``: provider, endpoint, headers and the exact body, minus delivery fields.

    Raises :class:`~deepseek_magic.core.errors.ConfigError` like sending would
    (the provider validates while building the body), so a request that
    could not be sent has no key either.
    """
    settings = request.settings
    provider = get_provider(settings.provider)
    call = request.call_for(provider)
    headers = {name.lower(): value for name, value in call.headers.items() if name.lower() != "accept"}
    material = {
        "v": KEY_VERSION,
        "provider": settings.provider,
        "method": call.method,
        "url": call.url,
        "headers": headers,
        "body": _canonical_body(provider, call.body),
    }
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    # surrogatepass: a key for text that cannot be sent must not fail here; sending reports it in one line.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cacheable(reply: Reply) -> bool:
    """Only replies the model finished are worth replaying."""
    return not (reply.partial or reply.interrupted or reply.error)


class ReplyCache:
    """Finished replies by :func:`cache_key`, in a SQLite file.

    One connection guarded by a lock serves every thread of the process (a
    batch's event-loop thread and the kernel's main thread); WAL mode lets
    other processes read while one writes. Every SQLite failure is turned
    into a miss: a cache may forget, it must never break a cell. A failure
    other than a damaged file turns the cache off (:attr:`off` says why),
    with one warning.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._setup(path)

    def _setup(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: Why the cache is off (``None`` while it works).
        self.off: str | None = None
        with self._lock:
            self._open()

    def __repr__(self) -> str:
        return f"ReplyCache({str(self.path)!r})"

    # ------------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes, no fsync per put
            conn.execute(_SCHEMA)
            conn.execute("SELECT count(*) FROM replies").fetchone()  # reads a page: a damaged file fails here
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> None:
        """Connect, or move a damaged file aside and start afresh (with a warning)."""
        try:
            self._conn = self._connect()
        except sqlite3.OperationalError as exc:  # read-only, locked, not a directory, disk full...
            self._turn_off(exc)
        except sqlite3.DatabaseError as exc:
            self._recreate(exc)
        except OSError as exc:  # the directory cannot be made: a file in the way, no permission
            self._turn_off(exc)

    def _turn_off(self, exc: BaseException) -> None:
        """Stop using the cache for this process, saying so once."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self.off is None:
            self.off = str(exc) or type(exc).__name__
            warnings.warn(
                f"the reply cache at {self.path} is off (replies are not cached): {self.off}",
                RuntimeWarning,
                stacklevel=5,
            )

    def _recreate(self, exc: Exception) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        moved = False
        try:
            os.replace(self.path, aside)
            moved = True
        except OSError:
            pass
        for suffix in ("-wal", "-shm"):  # the journal of a damaged database belongs to it
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        where = f"moved to {aside.name}" if moved else "discarded"
        warnings.warn(
            f"the reply cache {self.path} could not be read ({exc}); it was {where} and a new one started",
            RuntimeWarning,
            stacklevel=4,
        )
        try:
            self._conn = self._connect()
        except (sqlite3.Error, OSError) as again:
            self._turn_off(again)

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor | None:
        """Execute under the lock; a damaged file is recreated once, other failures warn and give ``None``."""
        with self._lock:
            for attempt in (0, 1):
                if self._conn is None:
                    return None
                try:
                    return self._conn.execute(sql, params)
                except sqlite3.OperationalError as exc:  # locked for too long, disk full, read-only...
                    if attempt == 0 and "malformed" in str(exc):
                        self._recreate(exc)
                        continue
                    self._turn_off(exc)
                    return None
                except sqlite3.DatabaseError as exc:
                    if attempt == 0:
                        self._recreate(exc)
                        continue
                    return None
        return None

    # --------------------------------------------------------------------- API

    def get(self, key: str) -> Reply | None:
        """The stored reply for ``key`` (marked ``cached=True``), or ``None``."""
        cursor = self._run("SELECT reply FROM replies WHERE key = ?", (key,))
        row = cursor.fetchone() if cursor is not None else None
        if row is None:
            return None
        try:
            reply = saved_reply(json.loads(row[0]))
        except (ValueError, TypeError, KeyError):
            self._run("DELETE FROM replies WHERE key = ?", (key,))  # an unreadable entry is a miss, once
            return None
        reply.cached = True
        return reply

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        cursor = self._run("SELECT 1 FROM replies WHERE key = ?", (key,))
        return cursor is not None and cursor.fetchone() is not None

    def put(self, key: str, reply: Reply) -> None:
        """Store ``reply`` under ``key``; partial, interrupted and failed replies are ignored."""
        if not cacheable(reply):
            return
        raw = reply.to_dict()
        raw["cached"] = False
        text = json.dumps(raw, ensure_ascii=False)
        self._run(
            "INSERT OR REPLACE INTO replies (key, reply, model, created) VALUES (?, ?, ?, ?)",
            (key, text, reply.model or "", time.time()),
        )

    def clear(self) -> int:
        """Forget every reply; returns how many there were (``%deepseek cache clear``)."""
        cursor = self._run("DELETE FROM replies")
        return max(cursor.rowcount, 0) if cursor is not None else 0

    def __len__(self) -> int:
        cursor = self._run("SELECT count(*) FROM replies")
        row = cursor.fetchone() if cursor is not None else None
        return int(row[0]) if row is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as the path only (Dask ships the cache to workers, which open their own connection)."""
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["path"])


_default: ReplyCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ReplyCache:
    """The process-wide cache at :func:`default_cache_path` (opened on first use)."""
    global _default
    with _default_lock:
        if _default is None or _default.path != default_cache_path():
            _default = ReplyCache()
        return _default
