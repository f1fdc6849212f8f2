"""A local DeepSeek emulator: a real HTTP server speaking DeepSeek's chat protocol.

It answers ``/chat/completions`` (also under ``/v1`` and ``/beta``), ``/models``
and ``/user/balance`` with the exact chunk and body shapes of the real V4 API,
validates requests like DeepSeek does, and can inject faults (error statuses,
dropped or stalled streams, malformed lines, keep-alive floods, slow trickles)
so client code can be tested and demonstrated without a key or network.
Replies are deterministic and marked ``[emulated]``.

The library never imports this package at runtime; tests, demos and the
``deepseek-magic emulator`` command do.
"""

from __future__ import annotations

from deepseek_magic.emulator.app import RecordedRequest, create_app
from deepseek_magic.emulator.config import EmulatorConfig, Scripted
from deepseek_magic.emulator.faults import Fault, parse_fault
from deepseek_magic.emulator.server import RunningEmulator, run_in_thread

__all__ = [
    "EmulatorConfig",
    "Fault",
    "RecordedRequest",
    "RunningEmulator",
    "Scripted",
    "create_app",
    "parse_fault",
    "run_in_thread",
]
