"""What a reply cost: dated price tables kept as data, overridable by the user.

Prices change (DeepSeek's changed three times in 2026), so they live in
``data/prices.json`` with the date each row took effect, and a reply is priced
at the row in force when it was made, peak hours included (DeepSeek's peak
hours skip Chinese public holidays: :mod:`deepseek_magic.core.holidays`). A provider that
reports its own cost (Runware) is believed over the table. Where no price is
known the cost stays ``None``: showing no figure beats showing a wrong one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

from deepseek_magic.core.events import Usage
from deepseek_magic.core.holidays import china_holiday

PER_MILLION = 1_000_000
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens: cache-hit input, cache-miss input, output (reasoning included)."""

    hit: float
    miss: float
    output: float
    peak: float = 1.0

    def cost(self, usage: Usage, *, peak: bool = False) -> float:
        factor = self.peak if peak else 1.0
        total = usage.cache_hit_tokens * self.hit + usage.cache_miss_tokens * self.miss
        total += usage.completion_tokens * self.output
        return total * factor / PER_MILLION


class PriceTable:
    """Prices per provider and model over time; :meth:`override` adds the user's own."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._overrides: dict[tuple[str, str], Price] = {}
        #: Lookups remembered per UTC hour in which nothing changes (a batch prices thousands of rows a second).
        self._by_hour: dict[tuple[str, str, datetime], tuple[Price, bool] | None] = {}

    @classmethod
    def bundled(cls) -> PriceTable:
        return cls(_bundled_data())

    def override(self, provider: str, model: str, *, hit: float, miss: float, output: float) -> None:
        """Use these prices for ``provider``/``model`` from now on (e.g. a reseller's own rates)."""
        self._overrides[(provider, model)] = Price(hit, miss, output)

    def price(self, provider: str, model: str, when: datetime) -> tuple[Price, bool] | None:
        """The price in force at ``when`` and whether ``when`` falls in peak hours."""
        override = self._overrides.get((provider, model))
        if override is not None:
            return override, False
        hour = when.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        key = (provider, model, hour)
        if key in self._by_hour:
            return self._by_hour[key]
        found, steady = self._look_up(provider, model, when, hour)
        if steady:  # peak hours and holidays turn on whole hours; a row taking effect mid-hour is not remembered
            if len(self._by_hour) >= 256:
                self._by_hour.clear()
            self._by_hour[key] = found
        return found

    def _look_up(
        self, provider: str, model: str, when: datetime, hour: datetime
    ) -> tuple[tuple[Price, bool] | None, bool]:
        """The price at ``when``, and whether it holds for the whole UTC ``hour`` it falls in."""
        section = self._data.get(provider) or {}
        model = (section.get("aliases") or {}).get(model, model)
        rows = (section.get("models") or {}).get(model) or []
        current = None
        steady = True
        for row in rows:
            starts = _parse_time(row["from"])
            if starts <= when:
                current = row
            if hour < starts < hour + _HOUR:
                steady = False
        if current is None:
            return None, steady
        price = Price(current["hit"], current["miss"], current["output"], current.get("peak", 1.0))
        peak = _in_peak(when, section.get("peak_hours_utc") or [])
        if peak and section.get("off_peak_on_china_holidays") and china_holiday(when) is not None:
            peak = False  # DeepSeek: Chinese public holidays are off-peak all day
        return (price, peak), steady

    def cost(self, provider: str, model: str, usage: Usage, when: datetime | None = None) -> float | None:
        """The cost of ``usage``; the provider's own figure wins; ``None`` when unknown."""
        if usage.cost is not None:
            return usage.cost
        moment = when or datetime.now(timezone.utc)
        found = self.price(provider, model, moment)
        if found is None:
            return None
        price, peak = found
        return price.cost(usage, peak=peak)

    def priced(self, provider: str, model: str, usage: Usage, when: datetime | None = None) -> Usage:
        """``usage`` with its ``cost`` filled in where a price is known."""
        cost = self.cost(provider, model, usage, when)
        return usage if cost is None or cost == usage.cost else replace(usage, cost=cost)

    def estimate(self, provider: str, model: str, prompt_tokens: int, output_tokens: int) -> float | None:
        """An upper estimate before sending: all input uncached, the output at its limit."""
        found = self.price(provider, model, datetime.now(timezone.utc))
        if found is None:
            return None
        price, peak = found
        return price.cost(Usage(cache_miss_tokens=prompt_tokens, completion_tokens=output_tokens), peak=peak)


def _in_peak(when: datetime, hours: list[list[int]]) -> bool:
    hour = when.astimezone(timezone.utc).hour
    return any(start <= hour < end for start, end in hours)


@lru_cache(maxsize=1024)
def _parse_time(text: str) -> datetime:
    """Remembered: every billed batch row looks up the same few dates."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@lru_cache(maxsize=1)
def _bundled_data() -> dict[str, Any]:
    raw = resources.files("deepseek_magic").joinpath("data/prices.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


PRICES = PriceTable.bundled()
