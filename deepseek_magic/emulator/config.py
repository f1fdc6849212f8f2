"""Emulator settings.

Defaults suit tests: no pacing, no scripted faults.  The CLI swaps in
realistic pacing for demos.  ``faults`` is a live list: tests may append specs
while the server runs, and each chat request consumes the first one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deepseek_magic.core import limits

#: Caps that keep every request bounded, whatever a fault spec or config asks for.
MAX_STALL_SECONDS = 60.0
MAX_TRICKLE_SECONDS = 10.0
MAX_KEEPALIVE_FLOOD = 100_000
#: Largest flood (``huge_line``, ``huge_error_body``) in MiB.
MAX_FLOOD_MIB = 512
#: Deepest nesting ``deep_json`` sends.
MAX_DEPTH = 1_000_000


@dataclass(frozen=True)
class Scripted:
    """An exact reply (or error) for the next chat request: tests feed hostile text through the real protocol.

    With ``error`` set the request is answered with HTTP ``status`` and that
    message in DeepSeek's error envelope; otherwise with ``content`` (and
    ``reasoning`` when thinking is on), streamed or not as asked.
    """

    content: str = ""
    reasoning: str = ""
    error: str | None = None
    status: int = 400


@dataclass
class EmulatorConfig:
    """How the emulator behaves; shared with the running server (not copied)."""

    #: Accepted Bearer key; ``None`` accepts any request, with or without a key.
    api_key: str | None = "sk-emulator"
    #: Tokens per second; 0 sends everything at once.
    tps: float = 0.0
    #: Seconds before the first token; keep-alive comments fill the wait.
    ttft: float = 0.0
    #: Scripted fault specs (header grammar), one consumed per chat request; "" means none.
    faults: list[str] = field(default_factory=list)
    #: Scripted replies, one consumed per chat request (after faults and the key check); a live list like ``faults``.
    scripted: list[Scripted] = field(default_factory=list)
    #: Chat requests in flight above this number get DeepSeek's 429.
    max_concurrency: int | None = None
    #: Seconds between ``: keep-alive`` comments (blank lines for non-stream) while waiting.
    keepalive_interval: float = 0.5
    #: Request bodies above this many bytes get a 413 (DeepSeek's own limit, 48 MiB: images travel inside).
    max_body_bytes: int = limits.MAX_REQUEST_BYTES
    #: Hard cap on one response's lifetime; a response still running then is cut off.
    max_response_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.tps < 0 or self.ttft < 0:
            raise ValueError("tps and ttft must not be negative")
        if self.keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.max_concurrency is not None and self.max_concurrency < 0:
            raise ValueError("max_concurrency must not be negative")
        if self.max_response_seconds <= 0:
            raise ValueError("max_response_seconds must be positive")
