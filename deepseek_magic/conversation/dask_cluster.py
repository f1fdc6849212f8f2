"""What a Dask batch needs from a ``distributed`` cluster: one cap, one pause, the key on request, progress.

Imported only when a ``distributed.Client`` is in use (see :mod:`.dask_batch`).

* :class:`ClusterGate`: the computation's cap is a ``distributed.Semaphore``
  with ``concurrency`` leases, one per request in flight anywhere in the
  cluster; a partition takes a lease (waiting), then the free ones it can use
  (not waiting), and gives back those it no longer needs
  (:mod:`deepseek_magic.batch.gate` says why). A 429's pause is a
  ``distributed.Variable`` holding the moment to wait until.
* :class:`KeyPlugin`: with ``send_key=True`` the key reaches each worker's
  memory as a worker plugin (installed by the client, kept by the scheduler
  for workers that join later), never as a task argument: the task graph, its
  repr, ``dask.base.tokenize`` and the dashboard only ever see a token.
* Progress: partitions put their figures on a ``distributed.Queue``; a thread
  in the notebook's process follows it and feeds the reporter.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from distributed import Queue, Semaphore, Variable
from distributed.diagnostics.plugin import WorkerPlugin
from pydantic import SecretStr

from deepseek_magic.batch.results import BatchPreview
from deepseek_magic.conversation.dask_keys import KEYS

if TYPE_CHECKING:
    from deepseek_magic.conversation.dask_batch import ProgressHub

#: How long the notebook's progress thread waits for a message before it stops following.
FOLLOW_IDLE = 3600.0


def _names(token: str) -> tuple[str, str, str]:
    return f"deepseek-magic-cap-{token}", f"deepseek-magic-pause-{token}", f"deepseek-magic-progress-{token}"


class ClusterGate:
    """:class:`~deepseek_magic.batch.gate.SharedGate` over a ``distributed.Semaphore`` and ``Variable``."""

    def __init__(self, token: str, cap: int) -> None:
        cap_name, pause_name, _ = _names(token)
        self.semaphore = Semaphore(max_leases=cap, name=cap_name)
        self.variable = Variable(pause_name)

    def take(self, wanted: int, wait: float | None) -> int:
        if wanted <= 0 or not self.semaphore.acquire(timeout=wait):
            return 0
        taken = 1
        while taken < wanted and self.semaphore.acquire(timeout=0):
            taken += 1
        return taken

    def give(self, count: int) -> None:
        for _ in range(count):
            self.semaphore.release()

    def paused_until(self) -> float:
        try:
            return float(self.variable.get(timeout=0.05))
        except (TimeoutError, asyncio.TimeoutError):
            return 0.0

    def pause(self, until: float) -> None:
        if until > self.paused_until():
            self.variable.set(until)


_gates: dict[str, ClusterGate] = {}
_queues: dict[str, Any] = {}
_lock = threading.Lock()


def cluster_gate(token: str, cap: int) -> ClusterGate:
    """The gate of computation ``token`` in this worker process (one per process, shared by its partitions)."""
    with _lock:
        gate = _gates.get(token)
        if gate is None:
            gate = _gates[token] = ClusterGate(token, cap)
        return gate


def publish(token: str, message: dict[str, Any]) -> None:
    """Send a progress message to the notebook's process."""
    with _lock:
        queue = _queues.get(token)
        if queue is None:
            queue = _queues[token] = Queue(_names(token)[2])
    queue.put(message)


class KeyPlugin(WorkerPlugin):
    """Puts the key of one computation into each worker's memory (``send_key=True``); the repr shows no key."""

    def __init__(self, token: str, key: SecretStr) -> None:
        self.token = token
        self.key = key

    def __repr__(self) -> str:
        return f"KeyPlugin({self.token!r})"

    def setup(self, worker: Any) -> None:
        KEYS[self.token] = self.key

    def teardown(self, worker: Any) -> None:
        KEYS.pop(self.token, None)


def prepare_cluster(client: Any, token: str, key: SecretStr | None, progress: bool) -> None:
    """Before the graph runs: no pause yet, and the key on the workers when the user chose to send it."""
    Variable(_names(token)[1], client=client).set(0.0)
    if key is not None:
        client.register_plugin(KeyPlugin(token, key), name=f"deepseek-magic-key-{token}")


def follow_progress(client: Any, token: str, hub: ProgressHub) -> threading.Thread:
    """Follow the partitions' progress messages in a daemon thread of this process, feeding ``hub``."""
    queue = Queue(_names(token)[2], client=client)

    def follow() -> None:
        while True:
            try:
                message = queue.get(timeout=FOLLOW_IDLE)
            except (TimeoutError, asyncio.TimeoutError):
                return
            if "preview" in message:
                hub.start(BatchPreview(**message["preview"]))
                continue
            hub.report(int(message["part"]), *message["figures"])
            with hub.lock:
                finished = bool(hub.total) and sum(figures[0] for figures in hub.parts.values()) >= hub.total
            if finished:
                return

    thread = threading.Thread(target=follow, name=f"deepseek-magic-progress-{token[:8]}", daemon=True)
    thread.start()
    return thread


__all__ = ["ClusterGate", "KeyPlugin", "cluster_gate", "follow_progress", "prepare_cluster", "publish"]
