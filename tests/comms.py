"""Frontend stand-ins for widget tests: a recording comm, and a recording ``display``.

ipywidgets creates comms through ``comm.create_comm``; replacing it with
:class:`RecordingComm` lets tests see (and count, and scan for secrets) exactly
what would go to the frontend, without a kernel or a browser. :class:`Transcript`
does the same for what a view hands to ``display``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import comm
import pytest
from comm.base_comm import BaseComm

Sink = Callable[[str, str, Any], None]  # (comm id, message type, data)


class RecordingComm(BaseComm):
    """A comm whose published messages go to :attr:`sink` instead of a kernel."""

    sink: ClassVar[Sink | None] = None

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        if RecordingComm.sink is not None:
            RecordingComm.sink(self.comm_id, msg_type, data)


def record_comms(monkeypatch: pytest.MonkeyPatch, sink: Sink) -> None:
    """Until the test ends, widgets open :class:`RecordingComm`s that report to ``sink``."""
    monkeypatch.setattr(RecordingComm, "sink", sink)
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


class Transcript:
    """Stands in for IPython's ``display``: what a view (e.g. the chat's) displays, in order.

    With ``display_id`` it returns a :class:`Handle` whose ``update`` replaces
    the item in place, as a frontend replaces the output: :attr:`items` is
    what the page shows now, :attr:`metadata` each item's output metadata.
    """

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.metadata: list[dict[str, Any]] = []

    def __call__(self, obj: Any, raw: bool = False, display_id: Any = None, **kwargs: Any) -> Handle | None:
        self.items.append(obj)
        self.metadata.append(kwargs.get("metadata") or {})
        return Handle(self, len(self.items) - 1) if display_id else None

    @property
    def lines(self) -> list[str]:
        return [str(item["text/plain"]) for item in self.items if isinstance(item, dict)]


class Handle:
    """A display handle on a :class:`Transcript` item: ``update`` replaces it, and is counted."""

    def __init__(self, transcript: Transcript, index: int) -> None:
        self.transcript = transcript
        self.index = index
        self.updates = 0

    def update(self, obj: Any, raw: bool = False, **kwargs: Any) -> None:
        self.transcript.items[self.index] = obj
        self.transcript.metadata[self.index] = kwargs.get("metadata") or {}
        self.updates += 1
