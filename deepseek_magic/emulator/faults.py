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

Values are clamped to the caps in :mod:`.config` so no request runs unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import MAX_KEEPALIVE_FLOOD, MAX_STALL_SECONDS, MAX_TRICKLE_SECONDS
from .errors import ApiError, auth_error, concurrency_error

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

    @property
    def stall_at(self) -> int | None:
        """Index of the data chunk the stall precedes (0 = before the first)."""
        if self.stall is None:
            return None
        return self.stall_after or 0


NO_FAULT = Fault()
_KEYS = ("status", "retry_after", "drop_after", "stall", "stall_after", "malformed_after", "keepalive", "trickle")


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
    )


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
