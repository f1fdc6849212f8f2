"""Chinese public holidays are off-peak for DeepSeek all day; the day is decided in China's time zone."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from deepseek_magic.core.events import Usage
from deepseek_magic.core.holidays import china_date, china_holiday, covered_years
from deepseek_magic.core.pricing import PriceTable
from deepseek_magic.providers import get_provider

USAGE = Usage(prompt_tokens=374, completion_tokens=61, cache_hit_tokens=256, cache_miss_tokens=118)
DATA = Path(__file__).resolve().parents[1] / "deepseek_magic" / "data" / "holidays.json"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_the_data_is_dated_sourced_and_covers_2026_and_2027() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert data["source"] and date.fromisoformat(data["checked"]) and data["utc_offset_hours"] == 8
    assert covered_years() == [2026, 2027]
    festivals = {"Spring Festival", "Qingming Festival", "Labour Day", "Dragon Boat Festival"}
    festivals |= {"Mid-Autumn Festival", "National Day"}
    for year, holidays in data["years"].items():
        assert festivals <= set(holidays), year
        for first, last in holidays.values():
            assert first.startswith(year) and date.fromisoformat(first) <= date.fromisoformat(last)


@pytest.mark.parametrize(
    ("moment", "holiday"),
    [
        ("2026-10-01T03:00:00", "National Day"),
        ("2026-09-30T16:30:00", "National Day"),  # 00:30 on 1 October in Beijing
        ("2026-09-30T15:30:00", None),  # 23:30 on 30 September in Beijing
        ("2026-02-17T02:00:00", "Spring Festival"),
        ("2026-06-19T07:00:00", "Dragon Boat Festival"),
        ("2027-02-06T02:00:00", "Spring Festival"),
        ("2027-10-08T02:00:00", None),
        ("2026-10-08T02:00:00", None),
    ],
)
def test_holidays_by_beijing_date(moment: str, holiday: str | None) -> None:
    assert china_holiday(utc(moment)) == holiday


def test_naive_times_are_utc() -> None:
    assert china_date(datetime(2026, 9, 30, 16, 30)) == date(2026, 10, 1)


def test_peak_hours_do_not_apply_on_chinese_holidays() -> None:
    table = PriceTable.bundled()
    workday_peak = table.cost("deepseek", "deepseek-v4-pro", USAGE, utc("2026-10-09T02:30:00"))
    holiday_peak_hour = table.cost("deepseek", "deepseek-v4-pro", USAGE, utc("2026-10-02T02:30:00"))
    holiday_off_hour = table.cost("deepseek", "deepseek-v4-pro", USAGE, utc("2026-10-02T12:00:00"))
    assert holiday_peak_hour == pytest.approx(holiday_off_hour)
    assert workday_peak == pytest.approx(2 * holiday_off_hour)  # type: ignore[operator]


@pytest.mark.parametrize("provider", ["deepseek", "anyfast", "evolink", "runware"])
def test_every_model_name_a_provider_lists_has_a_price_where_the_provider_has_prices(provider: str) -> None:
    table = PriceTable.bundled()
    names = [name for model in get_provider(provider).models for name in (model.name, *model.aliases)]
    priced = [table.price(provider, name, utc("2026-11-01T12:00:00")) is not None for name in names]
    assert all(priced) or not any(priced), names
    if provider == "deepseek":
        assert all(priced) and {"deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro"} <= set(names)
