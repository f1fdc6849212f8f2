"""The one retry policy: what may be sent again, and how long to wait first.

Why one module: the HTTP client (a single ask) and the batch runner (many rows,
with its own rate-limit pacing) must agree on the backoff formula, the status
codes worth another try and the longest ``Retry-After`` worth waiting for;
written twice they drifted. Both build a :class:`RetryPolicy` from the
:class:`~deepseek_magic.config.settings.Settings` and ask it.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from deepseek_magic.config.settings import Settings

#: Answers whose body is an error, not output: sending again cannot bill twice.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: A Retry-After longer than this is not waited for; the error is raised instead.
MAX_RETRY_AFTER = 60.0
#: The exponent stops growing here (the ceiling is ``backoff_max`` long before; this only avoids huge floats).
_MAX_EXPONENT = 16


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by ``max_retries`` and :data:`MAX_RETRY_AFTER`."""

    max_retries: int
    backoff_base: float
    backoff_max: float

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.max_retries, settings.backoff_base, settings.backoff_max)

    def backoff(self, attempt: int) -> float:
        """A jittered pause after ``attempt`` earlier tries (0-based), without any retry limit."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(attempt, _MAX_EXPONENT))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def honours(retry_after: float) -> bool:
        """Whether a server's ``Retry-After`` is short enough to wait for (else the user decides)."""
        return retry_after <= MAX_RETRY_AFTER

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """How long to wait before attempt ``attempt + 1``, or ``None`` to give up.

        The server's ``Retry-After`` wins when it is given; a server asking for
        more than :data:`MAX_RETRY_AFTER` is not waited for (the user sees the
        error at once and can decide).
        """
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if self.honours(retry_after) else None
        return self.backoff(attempt)


def retry_delay(settings: Settings, attempt: int, retry_after: float | None) -> float | None:
    """:meth:`RetryPolicy.delay` for ``settings`` (kept for callers of the old helper)."""
    return RetryPolicy.of(settings).delay(attempt, retry_after)


__all__ = ["MAX_RETRY_AFTER", "RETRYABLE_STATUS", "RetryPolicy", "parse_retry_after", "retry_delay"]
