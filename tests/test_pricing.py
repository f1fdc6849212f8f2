"""Cost from dated price tables, and the session budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.core.errors import BudgetExceeded
from deepseek_magic.core.events import Usage
from deepseek_magic.core.pricing import Price, PriceTable
from deepseek_magic.emulator import EmulatorConfig, run_in_thread

USAGE = Usage(prompt_tokens=374, completion_tokens=61, total_tokens=435, cache_hit_tokens=256, cache_miss_tokens=118)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_known_usage_on_a_known_table_with_cache_hits_priced_as_hits() -> None:
    table = PriceTable.bundled()
    cost = table.cost("deepseek", "deepseek-v4-flash", USAGE, at("2026-06-01T12:00:00"))
    assert cost == pytest.approx((256 * 0.0028 + 118 * 0.14 + 61 * 0.28) / 1e6)
    all_missed = Usage(prompt_tokens=374, completion_tokens=61, cache_miss_tokens=374)
    assert table.cost("deepseek", "deepseek-v4-flash", all_missed, at("2026-06-01T12:00:00")) > cost  # type: ignore[operator]


def test_peak_hours_and_later_price_changes() -> None:
    table = PriceTable.bundled()
    off_peak = table.cost("deepseek", "deepseek-v4-pro", USAGE, at("2026-08-20T12:00:00"))
    peak = table.cost("deepseek", "deepseek-v4-pro", USAGE, at("2026-08-20T02:30:00"))
    assert off_peak == pytest.approx((256 * 0.022 + 118 * 0.66 + 61 * 1.98) / 1e6)
    assert peak == pytest.approx(2 * off_peak)  # type: ignore[operator]
    flash_september = table.cost("deepseek", "deepseek-flash", USAGE, at("2026-09-20T12:00:00"))
    assert flash_september == pytest.approx((256 * 0.003 + 118 * 0.15 + 61 * 0.6) / 1e6)


def test_lookups_are_remembered_per_hour_unless_a_price_changes_within_it() -> None:
    rows = [
        {"from": "2026-01-01T00:00:00Z", "hit": 1.0, "miss": 1.0, "output": 1.0},
        {"from": "2026-06-01T10:30:00Z", "hit": 2.0, "miss": 2.0, "output": 2.0},
    ]
    table = PriceTable({"p": {"models": {"m": rows}, "peak_hours_utc": [[11, 12]]}})
    looked_up: list[datetime] = []
    look_up = table._look_up

    def counting(*args: Any) -> Any:
        looked_up.append(args[2])
        return look_up(*args)

    table._look_up = counting  # type: ignore[method-assign]
    before, after = table.price("p", "m", at("2026-06-01T10:10:00")), table.price("p", "m", at("2026-06-01T10:40:00"))
    assert before is not None and after is not None and (before[0].hit, after[0].hit) == (1.0, 2.0)
    assert len(looked_up) == 2  # the hour in which the price changes is never answered from memory
    steady = [table.price("p", "m", at(f"2026-06-01T11:{minute:02d}:00")) for minute in (0, 20, 59)]
    assert len(looked_up) == 3 and all(found == (Price(2.0, 2.0, 2.0), True) for found in steady)
    assert table.price("p", "m", at("2026-06-01T12:00:00")) == (Price(2.0, 2.0, 2.0), False)  # peak ended


def test_reported_cost_wins_and_unknown_prices_stay_unknown() -> None:
    table = PriceTable.bundled()
    reported = Usage(prompt_tokens=10, completion_tokens=5, cost=0.0123)
    assert table.cost("runware", "deepseek:v4@pro", reported) == 0.0123
    assert table.cost("anyfast", "deepseek-v4-pro", USAGE) is None
    assert table.cost("deepseek", "not-a-model", USAGE) is None


def test_user_override() -> None:
    table = PriceTable.bundled()
    table.override("anyfast", "deepseek-v4-pro", hit=0.01, miss=0.5, output=1.0)
    assert table.cost("anyfast", "deepseek-v4-pro", USAGE) == pytest.approx((2.56 + 59 + 61) / 1e6)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig()) as emu:
        yield emu


def test_session_costs_add_up_and_the_budget_refuses_before_sending(emulator: Any) -> None:
    settings = Settings.build(base_url=emulator.base_url, api_key="sk-emulator", max_tokens=200)
    session = Session(settings=settings, max_cost=1.0)
    reply = session.ask("How much does this cost?")
    assert reply.usage is not None and reply.usage.cost is not None and reply.usage.cost > 0
    assert session.cost == pytest.approx(reply.usage.cost)
    before = len(emulator.requests)
    session.max_cost = session.cost + 1e-9
    with pytest.raises(BudgetExceeded, match="would cross max_cost"):
        session.ask("And this one?")
    assert len(emulator.requests) == before, "nothing was sent"
