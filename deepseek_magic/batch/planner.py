"""Turning a batch's rows into requests: the prompt of every row first, each row's request when it is needed.

Why two steps: building a row's request (an :class:`~deepseek_magic.conversation.exchange.Exchange`,
its body, its cache key) costs some 40 µs, and at DeepSeek's account limit the
first 2,500 rows should be on the wire while the other 7,500 of a 10,000-row
batch are still being built. What must be known before anything is sent is
cheap: every row's prompt (the template interpolated, ~9 µs a row), which
rows cannot be sent, and the batch's fingerprint, which decides whether an
interrupted run of the same batch is resumed. The fingerprint covers every
row's prompt and one row's whole request (model, parameters, system prompt,
schema, URL): every row of a batch shares everything but its prompt.
"""

from __future__ import annotations

import hashlib
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from deepseek_magic.client.cache import cache_key
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.features.interpolation import InterpolationError, interpolate
from deepseek_magic.providers import ChatRequest

if TYPE_CHECKING:
    from deepseek_magic.conversation.exchange import Exchange
    from deepseek_magic.conversation.session import Session


@dataclass(eq=False)
class Job:
    """A row on its way: its prompt, then the exchange and the request to send now, and what happened so far."""

    position: int
    #: The interpolated template (``None`` when it could not be filled).
    prompt: str | None = None
    exchange: Exchange | None = None
    request: ChatRequest | None = None
    key: str = ""
    error: str | None = None
    hits: int = 0
    sent: int = 0
    billed: Usage | None = None
    #: Replies to store in the cache once the whole row has succeeded (copies taken before ``accept``).
    to_store: list[tuple[str, Reply]] = field(default_factory=list)
    rate_limited: int = 0
    failures: int = 0


def one_line(text: str, limit: int = 500) -> str:
    """A row's error as one line of at most ``limit`` characters (a frame cell, not a traceback)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RowPlanner:
    """Plans rows on a *scratch* session (the caller's settings and prices, no turns).

    ``keyed``: compute each request's cache key (only a run with a reply cache
    looks them up).
    """

    def __init__(self, scratch: Session, *, system: str | None, schema: Any, keyed: bool) -> None:
        self.scratch = scratch
        self.system = system
        self.schema = schema
        self.keyed = keyed

    def prompts(self, records: Sequence[Mapping[str, Any]], template: str, names: Mapping[str, Any]) -> list[Job]:
        """One job per row with its prompt, or its error when the template cannot be filled."""
        jobs: list[Job] = []
        for position, record in enumerate(records):
            job = Job(position)
            try:
                job.prompt = interpolate(template, ChainMap(cast(dict[str, Any], record), cast(dict[str, Any], names)))
            except InterpolationError as exc:
                job.error = one_line(str(exc))
            jobs.append(job)
        return jobs

    def plan(self, job: Job) -> None:
        """Build the row's exchange and first request (a text that cannot be sent becomes the row's error)."""
        if job.prompt is None or job.error is not None or job.exchange is not None:
            return
        try:
            job.exchange = self.scratch.exchange(
                job.prompt, key=f"batch-{job.position}", system=self.system, schema=self.schema
            )
        except ConfigError as exc:  # text that cannot be sent (a lone surrogate): this row's error
            job.error = one_line(str(exc))
            return
        self.next_request(job)

    def next_request(self, job: Job) -> None:
        assert job.exchange is not None
        job.request = job.exchange.next_request()
        job.key = cache_key(job.request) if job.request is not None and self.keyed else ""

    def fingerprint(self, jobs: Sequence[Job]) -> str:
        """What identifies this batch's requests: one whole request (plans the first row that can be) and every
        row's prompt or error."""
        witness = ""
        for job in jobs:
            self.plan(job)
            if job.request is not None:
                witness = cache_key(job.request)
                break
        digest = hashlib.sha256(witness.encode())
        for job in jobs:
            mark, value = (b"!", job.error) if job.error is not None else (b"?", job.prompt or "")
            data = value.encode("utf-8", "surrogatepass")
            digest.update(mark + len(data).to_bytes(8, "big") + data)
        return digest.hexdigest()


__all__ = ["Job", "RowPlanner", "one_line"]
