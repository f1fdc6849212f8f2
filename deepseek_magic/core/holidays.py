"""Mainland China public holidays, for DeepSeek's off-peak pricing.

DeepSeek's peak-hour surcharge applies on working days only: on Chinese public
holidays the whole day is billed at the off-peak rate. Holidays are decided by
the State Council each year (with bridge days), so they are dated data in
``data/holidays.json`` (source and "checked" date inside), not a rule. The day
is the Beijing date (UTC+8): 23:30 UTC on 30 September is already 1 October
in China.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    raw = resources.files("deepseek_magic").joinpath("data/holidays.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


@lru_cache(maxsize=1)
def _days() -> dict[date, str]:
    days: dict[date, str] = {}
    for holidays in _data()["years"].values():
        for name, (first, last) in holidays.items():
            day, end = date.fromisoformat(first), date.fromisoformat(last)
            while day <= end:
                days[day] = name
                day += timedelta(days=1)
    return days


def china_date(when: datetime) -> date:
    """The calendar date in China (UTC+8) at ``when`` (a naive datetime is taken as UTC)."""
    moment = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone(timedelta(hours=int(_data()["utc_offset_hours"])))).date()


def china_holiday(when: datetime) -> str | None:
    """The holiday's name when ``when`` falls on a mainland China public holiday, else ``None``."""
    return _days().get(china_date(when))


def covered_years() -> list[int]:
    """The years the bundled data lists (outside them, no day counts as a holiday)."""
    return sorted(int(year) for year in _data()["years"])
