"""Fault specs: what a request should go through instead of a clean answer.

A spec is a comma-separated list of ``key=value`` items, the same grammar in the
``X-Emulator-Fault`` header, in ``EmulatorConfig.faults`` and on the CLI::

    status=503,retry_after=2      answer 503 with DeepSeek's body and Retry-After: 2
    drop_after=5                  5 data chunks, then abort the connection (no [DONE])
    stall=3                       headers, then 3 s of silence before the first chunk
    stall=3,stall_after=4         ... the silence comes after 4 chunks instead
    malformed_after=2             a broken ``data:`` line after 2 chunks, then carry on
    keepalive=50                  50 ``: keep-alive`` comments before the first chunk
    trickle=0.2                   0.2 s between chunks

Answers that are not a reply at all (issue #13: faults found outside the first matrix)::

    done_only=1                   a stream of only ``data: [DONE]`` (a body: no choices, no usage)
    usage_only=1                  one chunk with ``choices: []`` and usage, then [DONE] (a body: the same)
    html_200=1                    200 with a proxy's HTML error page instead of a reply
    redirect=1                    301 to another host, with an HTML body
    close_after_request=1         read the request, then close the connection without a word
    huge_line=60                  60 MiB of one line with no newline after the first chunk, then a drop
                                  (a body: 60 MiB of junk)
    deep_json=50000               a chunk nested 50,000 arrays deep after the first one, then carry on
                                  (a body: the nesting instead of the reply)
    huge_error_body=200           a 500 (or ``status=``) whose body is 200 MiB

Values are clamped to the caps in :mod:`.config` so no request runs unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepseek_magic.emulator.config import (
    MAX_DEPTH,
    MAX_FLOOD_MIB,
    MAX_KEEPALIVE_FLOOD,
    MAX_STALL_SECONDS,
    MAX_TRICKLE_SECONDS,
)
from deepseek_magic.emulator.errors import ApiError, auth_error, concurrency_error

#: Statuses a fault may force, with DeepSeek's message and type for each.
FAULT_STATUSES: dict[int, tuple[str, str]] = {
    400: (
        "Failed to deserialize the JSON body into the target type: emulated fault (status=400)",
        "invalid_request_error",
    ),
    402: ("Insufficient Balance", "unknown_error"),
    422: ("Invalid Parameters (emulated fault)", "invalid_request_error"),
    500: ("Server Error", "server_error"),
    502: ("Bad Gateway", "server_error"),
    503: ("Server Overloaded", "server_error"),
    504: ("Gateway Timeout", "server_error"),
}


@dataclass(frozen=True)
class Fault:
    """One parsed fault spec; every field ``None`` means a clean answer."""

    status: int | None = None
    retry_after: str | None = None
    drop_after: int | None = None
    stall: float | None = None
    stall_after: int | None = None
    malformed_after: int | None = None
    keepalive: int | None = None
    trickle: float | None = None
    done_only: bool = False
    usage_only: bool = False
    html_200: bool = False
    redirect: bool = False
    close_after_request: bool = False
    #: MiB of one endless line.
    huge_line: int | None = None
    #: Nesting depth of one JSON chunk.
    deep_json: int | None = None
    #: MiB of an error body.
    huge_error_body: int | None = None

    @property
    def stall_at(self) -> int | None:
        """Index of the data chunk the stall precedes (0 = before the first)."""
        if self.stall is None:
            return None
        return self.stall_after or 0


NO_FAULT = Fault()
_FLAGS = ("done_only", "usage_only", "html_200", "redirect", "close_after_request")
_KEYS = (
    "status",
    "retry_after",
    "drop_after",
    "stall",
    "stall_after",
    "malformed_after",
    "keepalive",
    "trickle",
    *_FLAGS,
    "huge_line",
    "deep_json",
    "huge_error_body",
)


def parse_fault(spec: str | None) -> Fault:
    """Parse a spec; raises ``ValueError`` naming the bad item."""
    if spec is None or not spec.strip() or spec.strip().lower() == "none":
        return NO_FAULT
    values: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _KEYS:
            raise ValueError(f"unknown fault item {item!r}; expected key=value with key one of {', '.join(_KEYS)}")
        values[key] = value.strip()
    return Fault(
        status=_status(values.get("status")),
        retry_after=_retry_after(values.get("retry_after")),
        drop_after=_count("drop_after", values.get("drop_after"), None),
        stall=_seconds("stall", values.get("stall"), MAX_STALL_SECONDS),
        stall_after=_count("stall_after", values.get("stall_after"), None),
        malformed_after=_count("malformed_after", values.get("malformed_after"), None),
        keepalive=_count("keepalive", values.get("keepalive"), MAX_KEEPALIVE_FLOOD),
        trickle=_seconds("trickle", values.get("trickle"), MAX_TRICKLE_SECONDS),
        huge_line=_positive("huge_line", values.get("huge_line"), MAX_FLOOD_MIB),
        deep_json=_positive("deep_json", values.get("deep_json"), MAX_DEPTH),
        huge_error_body=_positive("huge_error_body", values.get("huge_error_body"), MAX_FLOOD_MIB),
        **{flag: _flag(flag, values.get(flag)) for flag in _FLAGS},
    )


def _flag(key: str, raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.lower()
    if value not in ("1", "0", "true", "false", "yes", "no"):
        raise ValueError(f"{key} must be 1 or 0, got {raw!r}")
    return value in ("1", "true", "yes")


def _positive(key: str, raw: str | None, cap: int) -> int | None:
    value = _count(key, raw, cap)
    if value == 0:
        raise ValueError(f"{key} must be at least 1, got {raw!r}")
    return value


def _status(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) not in (*FAULT_STATUSES, 401, 429):
        allowed = "|".join(str(code) for code in sorted((*FAULT_STATUSES, 401, 429)))
        raise ValueError(f"status must be one of {allowed}, got {raw!r}")
    return int(raw)


def _number(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{key} must be a finite number >= 0, got {raw!r}")
    return value


def _seconds(key: str, raw: str | None, cap: float) -> float | None:
    return None if raw is None else min(_number(key, raw), cap)


def _count(key: str, raw: str | None, cap: int | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValueError(f"{key} must be a whole number >= 0, got {raw!r}")
    return int(raw) if cap is None else min(int(raw), cap)


def _retry_after(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = _number("retry_after", raw)
    return str(int(value)) if value.is_integer() else raw


def fault_error(fault: Fault, presented_key: str | None, in_flight: int) -> ApiError | None:
    """The error a ``status=`` fault forces, or ``None`` when it forces none."""
    if fault.status is None:
        return None
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.status == 401:
        error = auth_error(presented_key or "")
    elif fault.status == 429:
        error = concurrency_error(in_flight, max(in_flight - 1, 0))
    else:
        message, type_ = FAULT_STATUSES[fault.status]
        error = ApiError(fault.status, message, type_=type_)
    error.headers.update(headers)
    return error
