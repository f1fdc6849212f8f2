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
    """Stands in for IPython's ``display``: what a view (e.g. the chat's) displays, in order."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, obj: Any, raw: bool = False, **kwargs: Any) -> None:
        self.items.append(obj)

    @property
    def lines(self) -> list[str]:
        return [str(item["text/plain"]) for item in self.items if isinstance(item, dict)]
