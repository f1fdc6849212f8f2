"""Batches against the emulator over real HTTP: order, row errors, interrupt/resume, cache, 429 back-off."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from comms import Transcript
from pydantic import BaseModel

from deepseek_magic import Session, Settings
from deepseek_magic.batch import (
    USAGE_COLUMNS,
    AdaptiveLimiter,
    BatchNeedsConfirmation,
    BatchPreview,
    LoopThread,
    RowResult,
    _frame,
    batch_meta,
    planner,
    run_batch,
    runner,
    shared_loop,
)
from deepseek_magic.client import h1
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.core.errors import BudgetExceeded, ConfigError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.ui.batch_progress import TextBatchProgress, WidgetBatchProgress, format_duration, make_progress

KEY = "sk-emulator"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY, ttft=0.05)) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    """The shared emulator, with scripted faults and limits reset after each test."""
    yield emulator
    emulator.config.faults.clear()
    emulator.config.max_concurrency = None


def new_session(emu: Any, **options: Any) -> Session:
    settings = Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01, **options)
    return Session(settings=settings)


def sent(emu: Any) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


def settled(emu: Any) -> int:
    """:func:`sent`, once the server holds no request (an interrupted batch's last ones may still be arriving)."""
    deadline = time.monotonic() + 10
    while emu.app.state.emulator.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.app.state.emulator.in_flight == 0, "the server still holds requests 10 s after the interrupt"
    return sent(emu)


def bodies(emu: Any, since: int) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests[since:] if r.path.endswith("/chat/completions")]


WORDS = [f"«w{i}»" for i in range(30)]


def test_results_come_back_in_input_order(emu: Any) -> None:
    session = new_session(emu)
    before = sent(emu)
    result = run_batch(session, WORDS, "Repeat {item} please", concurrency=8)
    assert sent(emu) - before == 30
    assert list(result.columns) == ["reply", *USAGE_COLUMNS]
    assert list(result.index) == list(range(30))
    for word, reply in zip(WORDS, result["reply"], strict=True):
        assert f"Repeat {word} please" in reply
    assert result["error"].isna().all() and not result["cached"].any()
    assert (result["completion_tokens"] > 0).all() and (result["cost"] > 0).all()
    assert result.attrs["batch"]["sent"] == 30
    assert not any(body.get("stream") for body in bodies(emu, before))  # batches do not stream by default


def test_a_dataframe_keeps_its_index_and_names_its_columns(emu: Any) -> None:
    frame = pd.DataFrame({"city": ["Paris", "Lima", "Oslo"], "n": [1, 2, 3]}, index=["a", "b", "c"])
    result = run_batch(new_session(emu), frame, "Name {n} sights in {city} for {who}", namespace={"who": "kids"})
    assert list(result.index) == ["a", "b", "c"]
    assert "Name 2 sights in Lima for kids" in result.loc["b", "reply"]


def test_rows_are_not_conversation_turns(emu: Any) -> None:
    session = new_session(emu)
    session.ask("Remember the word swordfish")
    before = sent(emu)
    run_batch(session, ["x", "y"], "Say {item}")
    assert len(session.turns) == 1
    assert all(len(body["messages"]) == 1 for body in bodies(emu, before))  # no history sent


def test_row_errors_are_recorded_not_raised(emu: Any) -> None:
    # One at a time, so each scripted fault meets a known row; the 500 is retried and then succeeds.
    emu.config.faults.extend(["", "status=400", "status=500", "", "status=422"])
    result = run_batch(new_session(emu), [f"r{i}" for i in range(6)], "Say {item}", concurrency=1)
    errors = result["error"].tolist()
    assert [i for i, e in enumerate(errors) if e is not None] == [1, 3]
    assert "HTTP 400" in errors[1] and "HTTP 422" in errors[3]
    assert result["reply"].isna().tolist() == [False, True, False, True, False, False]
    assert result.attrs["batch"]["errors"] == 2


def test_an_auth_failure_stops_the_batch_without_sending_the_rest(emu: Any) -> None:
    emu.config.faults.append("status=401")
    before = sent(emu)
    result = run_batch(new_session(emu), ["a", "b", "c", "d"], "Say {item}", concurrency=1)
    assert sent(emu) - before == 1
    assert result["error"].str.contains("HTTP 401").all()


def test_a_prompt_that_cannot_be_built_is_a_row_error(emu: Any) -> None:
    class Boom:
        @property
        def bad(self) -> str:
            raise RuntimeError("nope")

    class Fine:
        bad = "fine"

    rows = [{"obj": Boom()}, {"obj": Fine()}]
    result = run_batch(new_session(emu), rows, "Tell me about {obj.bad}")
    assert "nope" in result.loc[0, "error"]
    assert result.loc[1, "error"] is None


def test_interrupt_keeps_finished_rows_and_a_rerun_sends_only_the_rest(emu: Any) -> None:
    session = new_session(emu)

    def stop_after_some(done: int, total: int, errors: int, tokens: int, cost: float) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(session, WORDS, "Echo {item}", concurrency=4, progress=stop_after_some)
    (kept,) = session.batch_state.values()  # type: ignore[attr-defined]
    assert 8 <= len(kept) < 30
    before = settled(emu)
    result = run_batch(session, WORDS, "Echo {item}", concurrency=4)
    assert sent(emu) - before == 30 - len(kept)
    assert result.attrs["batch"]["resumed"] == len(kept)
    assert result["error"].isna().all()
    for word, reply in zip(WORDS, result["reply"], strict=True):
        assert f"Echo {word}" in reply
    assert session.batch_state == {}  # type: ignore[attr-defined]
    # A finished batch leaves nothing behind: the same call sends everything again.
    before = sent(emu)
    run_batch(session, WORDS[:3], "Echo {item}")
    run_batch(session, WORDS[:3], "Echo {item}")
    assert sent(emu) - before == 6


def test_a_rerun_with_other_settings_does_not_resume(emu: Any) -> None:
    session = new_session(emu)

    def stop(done: int, *_: Any) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(session, WORDS[:10], "Echo {item}", concurrency=2, progress=stop)
    before = sent(emu)
    run_batch(session, WORDS[:10], "Echo {item}", concurrency=2, temperature=0.5)
    assert sent(emu) - before == 10


class _Watch:
    """Progress that keeps the preview it was shown and counts updates."""

    def __init__(self) -> None:
        self.previews: list[BatchPreview] = []

    def start(self, preview: BatchPreview) -> None:
        self.previews.append(preview)

    def update(self, *figures: Any) -> None:
        pass


def _count_writes_and_plans(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[tuple[int, int]]]:
    """Requests written so far (one counter) and, per planned row, (position, requests written by then); rows
    after the first four are planned slowly."""
    writes = [0]
    planned: list[tuple[int, int]] = []
    send, plan = h1._Connection.send, planner.RowPlanner.plan

    def counting_send(self: Any, head: bytes, body: bytes | None) -> None:
        writes[0] += 1
        send(self, head, body)

    def recording_plan(self: planner.RowPlanner, job: planner.Job) -> None:
        if job.exchange is None and job.prompt is not None:
            planned.append((job.position, writes[0]))
            if job.position >= 4:
                time.sleep(0.01)  # slower than the server: workers run out of rows and must wait for the next ones
        plan(self, job)

    monkeypatch.setattr(h1._Connection, "send", counting_send)
    monkeypatch.setattr(planner.RowPlanner, "plan", recording_plan)
    monkeypatch.setattr(runner, "FEED_CHUNK", 8)  # several hand-overs with few rows
    return writes, planned


def test_the_first_rows_go_out_before_the_rest_is_planned_and_every_row_comes_back(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, planned = _count_writes_and_plans(monkeypatch)
    rows = [f"w{i}" for i in range(40)]
    rows[33] = "lone \ud800 surrogate"  # found only when the row is planned, after the first wave went out
    watch = _Watch()
    result = run_batch(new_session(emu), rows, "Echo {item}", concurrency=4, progress=watch)
    assert [position for position, _ in planned] == list(range(40))
    assert all(writes == 0 for position, writes in planned if position < 4), "the first wave is planned first"
    assert all(writes >= 1 for position, writes in planned if position >= 4), "the rest once requests are out"
    for position, (word, reply, error) in enumerate(zip(rows, result["reply"], result["error"], strict=True)):
        if position == 33:
            assert pd.isna(reply) and "surrogate" in error
        else:
            assert error is None and f"Echo {word}" in reply
    (preview,) = watch.previews
    assert (preview.total, preview.to_send, preview.failed) == (40, 39, 1), "the preview counts rows planned later"
    assert preview.estimate is not None and preview.estimate > 0


def test_an_interrupt_while_the_rest_is_planned_keeps_finished_rows_and_sends_nothing_more(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "FEED_CHUNK", 8)
    plan = planner.RowPlanner.plan
    interrupted = threading.Event()

    def interrupting_plan(self: planner.RowPlanner, job: planner.Job) -> None:
        if job.position == 20 and not interrupted.is_set():
            deadline = time.monotonic() + 10  # the first wave answered, so there are finished rows to keep
            while (sent(emu) < 4 or emu.app.state.emulator.in_flight) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
            interrupted.set()
            raise KeyboardInterrupt  # the kernel's Interrupt, landing in the calling thread while it plans
        plan(self, job)

    monkeypatch.setattr(planner.RowPlanner, "plan", interrupting_plan)
    session = new_session(emu)
    with pytest.raises(KeyboardInterrupt):
        run_batch(session, WORDS, "Echo {item}", concurrency=4)
    before = settled(emu)
    assert before >= 1
    time.sleep(0.2)
    assert sent(emu) == before, "nothing is sent after the interrupt"
    (kept,) = session.batch_state.values()  # type: ignore[attr-defined]
    finished = len(kept)
    assert 4 <= finished < 30
    result = run_batch(session, WORDS, "Echo {item}", concurrency=4)
    assert sent(emu) - before == 30 - finished, "the re-run resumes: finished rows are not sent again"
    assert result["error"].isna().all()
    assert all(f"Echo {word}" in reply for word, reply in zip(WORDS, result["reply"], strict=True))


def test_an_interrupt_after_the_first_wave_went_out_stops_the_run(emu: Any) -> None:
    class InterruptedPreview(_Watch):
        def start(self, preview: BatchPreview) -> None:
            raise KeyboardInterrupt  # lands while the first rows are already out, before the calling thread waits

    session = new_session(emu)
    before = sent(emu)
    with pytest.raises(KeyboardInterrupt):
        run_batch(session, WORDS, "Echo {item}", concurrency=2, progress=InterruptedPreview())
    after = settled(emu)
    time.sleep(0.3)
    assert sent(emu) == after, "nothing is sent after the interrupt"
    assert after - before < len(WORDS), "the run was cancelled, not left running in the loop thread"


def test_cache_hits_on_rerun(emu: Any, tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "replies.sqlite")
    session = new_session(emu)
    rows = WORDS[:10]
    before = sent(emu)
    first = run_batch(session, rows, "Cache {item}", cache=cache, concurrency=4)
    assert sent(emu) - before == 10 and len(cache) == 10 and not first["cached"].any()
    second = run_batch(session, rows, "Cache {item}", cache=cache, concurrency=4)
    assert sent(emu) - before == 10
    assert second["cached"].all() and (second["cost"] == 0).all()
    assert second["reply"].tolist() == first["reply"].tolist()
    assert second["completion_tokens"].tolist() == first["completion_tokens"].tolist()
    third = run_batch(session, rows, "Cache {item}", cache=None, concurrency=4)  # --no-cache
    assert sent(emu) - before == 20 and not third["cached"].any()


def test_streamed_rows_share_cache_entries_with_non_streamed_ones(emu: Any, tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "replies.sqlite")
    session = new_session(emu)
    before = sent(emu)
    streamed = run_batch(session, ["a", "b"], "Stream {item}", cache=cache, stream=True)
    assert all(body.get("stream") is True for body in bodies(emu, before))
    again = run_batch(session, ["a", "b"], "Stream {item}", cache=cache)
    assert sent(emu) - before == 2 and again["cached"].all()
    assert again["reply"].tolist() == streamed["reply"].tolist()


def test_failed_rows_are_not_cached_and_are_sent_again(emu: Any, tmp_path: Path) -> None:
    cache = ReplyCache(tmp_path / "replies.sqlite")
    emu.config.faults.append("status=400")
    first = run_batch(new_session(emu), ["a", "b"], "Fail {item}", cache=cache, concurrency=1)
    assert first["error"].notna().tolist() == [True, False] and len(cache) == 1
    before = sent(emu)
    second = run_batch(new_session(emu), ["a", "b"], "Fail {item}", cache=cache, concurrency=1)
    assert sent(emu) - before == 1 and second["error"].isna().all()
    assert second["cached"].tolist() == [False, True]


def test_429_backs_off_and_every_row_succeeds(emu: Any) -> None:
    emu.config.max_concurrency = 3
    before = sent(emu)
    result = run_batch(new_session(emu), WORDS[:24], "Limit {item}", concurrency=12)
    stats = result.attrs["batch"]
    assert result["error"].isna().all()
    assert stats["rate_limited"] > 0 and sent(emu) - before == 24 + stats["rate_limited"]
    assert stats["lowest_concurrency"] < 12


def test_json_mode_gives_fields_as_columns(emu: Any, tmp_path: Path) -> None:
    frame = pd.DataFrame({"name": ["Ada", "Alan", "Grace"]})
    template = "Describe {name} as a JSON object with keys name, born, field"
    cache = ReplyCache(tmp_path / "replies.sqlite")
    result = run_batch(new_session(emu), frame, template, json=True, cache=cache)
    assert list(result.columns)[:3] == ["name", "born", "field"]
    assert list(result.columns)[3:] == list(USAGE_COLUMNS)
    assert result["error"].isna().all() and result["name"].notna().all()
    again = run_batch(new_session(emu), frame, template, json=True, cache=cache)  # parsed again from the cache
    assert again["cached"].all()
    assert again.drop(columns=["cached", "cost"]).equals(result.drop(columns=["cached", "cost"]))


def test_json_schema_validates_each_row(emu: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    result = run_batch(new_session(emu), ["Paris", "Lima"], "Facts about {item}", schema=schema)
    assert list(result.columns)[:2] == ["city", "population"]
    assert result["error"].isna().all()
    assert list(batch_meta(schema=schema).columns) == list(result.columns)


class City(BaseModel):
    city: str
    population: int


def test_a_pydantic_schema_gives_its_fields_as_columns(emu: Any) -> None:
    result = run_batch(new_session(emu), ["Paris", "Lima"], "Facts about {item}", schema=City)
    assert list(result.columns) == list(batch_meta(schema=City).columns) == ["city", "population", *USAGE_COLUMNS]
    assert result["error"].isna().all() and result["population"].map(type).eq(int).all()


def test_non_object_json_goes_to_a_data_column() -> None:
    results = [RowResult(value=[1, 2]), RowResult(value={"a": 1}), RowResult(error="boom")]
    frame = _frame(results, pd.RangeIndex(3), json_mode=True)
    assert list(frame.columns) == ["data", *USAGE_COLUMNS]
    assert frame.loc[0, "data"] == [1, 2] and frame.loc[2, "error"] == "boom"
    fields = _frame([RowResult(value={"error": "x", "b": 2})], pd.RangeIndex(1), json_mode=True)
    assert list(fields.columns)[:2] == ["data.error", "b"]  # a field may not hide the error column


def test_cost_preview_asks_for_confirmation_before_sending(emu: Any) -> None:
    session = new_session(emu)
    before = sent(emu)
    with pytest.raises(BatchNeedsConfirmation, match=r"\$.*confirmed=True") as caught:
        run_batch(session, WORDS, "Expensive {item}", confirm_above=0.0)
    assert sent(emu) == before
    preview = caught.value.preview
    assert preview.to_send == 30 and preview.estimate is not None and preview.estimate > 0
    assert getattr(session, "batch_state", {}) == {}  # nothing to resume: nothing was sent
    seen: list[BatchPreview] = []

    class Recorder:
        def start(self, preview: BatchPreview) -> None:
            seen.append(preview)

        def update(self, *figures: Any) -> None:
            pass

        def close(self) -> None:
            pass

    run_batch(session, WORDS[:2], "Expensive {item}", confirm_above=0.0, confirmed=True, progress=Recorder())
    assert sent(emu) - before == 2 and seen[0].to_send == 2
    # A cheap batch below the threshold needs no confirmation: it is sent and answered.
    cheap = run_batch(session, WORDS[:1], "Cheap {item}", confirm_above=100.0)
    assert sent(emu) - before == 3
    assert len(cheap) == 1 and cheap["error"].isna().all() and cheap.loc[0, "reply"].startswith("[emulated]")


def test_max_tokens_bounds_the_estimate(emu: Any) -> None:
    session = new_session(emu)
    with pytest.raises(BatchNeedsConfirmation) as small:
        run_batch(session, WORDS, "x {item}", confirm_above=0.0, max_tokens=10)
    with pytest.raises(BatchNeedsConfirmation) as default:
        run_batch(session, WORDS, "x {item}", confirm_above=0.0)
    assert small.value.preview.estimate is not None and default.value.preview.estimate is not None
    assert small.value.preview.estimate < default.value.preview.estimate


def test_the_session_budget_applies(emu: Any) -> None:
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=KEY), max_cost=1e-9)
    before = sent(emu)
    with pytest.raises(BudgetExceeded):
        run_batch(session, WORDS, "x {item}")
    assert sent(emu) == before


def test_a_missing_key_is_raised_before_anything_is_sent(emu: Any) -> None:
    session = Session(settings=Settings.build(base_url=emu.base_url))
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        run_batch(session, WORDS, "x {item}")


def test_bad_input_is_refused() -> None:
    session = Session(settings=Settings.build(api_key=KEY))
    with pytest.raises(ConfigError):
        run_batch(session, "not a list", "x")
    with pytest.raises(ConfigError):
        run_batch(session, ["a"], "x", concurrency=0)


def test_text_progress_line(emu: Any) -> None:
    out = io.StringIO()
    run_batch(new_session(emu), WORDS[:5], "Progress {item}", progress=TextBatchProgress(out))
    text = out.getvalue()
    assert text.startswith("batch: 5 of 5 rows to send")
    assert "\r" in text and "5/5 rows" in text and "tokens" in text and "$" in text and text.endswith("\n")


def test_widget_progress() -> None:
    shown = Transcript()
    progress = WidgetBatchProgress(display=shown, interval=0)
    progress.start(BatchPreview(total=4, to_send=4, cached=0, resumed=0, failed=0, estimate=0.01, concurrency=2))
    progress.update(1, 4, 0, 100, 0.001)
    progress.update(3, 4, 1, 300, 0.003)
    live = shown.items[0]
    assert live["application/vnd.jupyter.widget-view+json"]["model_id"] == progress.box.model_id
    assert live["text/plain"].startswith("batch ") and shown.metadata[0] == {"deepseek_magic": {"live_widget": True}}
    assert progress.bar.value == 3 and progress.bar.max == 4
    assert "1 error" in progress.label.value and "ETA" in progress.label.value
    progress.close()
    assert progress.bar.bar_style == "danger" and "stopped" in progress.label.value
    # The widget's output became one static line (a saved notebook needs no widget state for it).
    assert len(shown.items) == 1 and set(shown.items[0]) == {"text/plain", "text/html", "text/markdown"}
    assert "3/4" in shown.items[0]["text/plain"] and shown.items[0]["text/plain"].endswith("stopped")
    assert progress.box.comm is None
    assert isinstance(make_progress(None), TextBatchProgress)
    assert isinstance(make_progress(None, view="widget"), WidgetBatchProgress)
    assert format_duration(3725) == "1:02:05" and format_duration(65) == "1:05"


def test_the_limiter_halves_once_per_round_and_creeps_back() -> None:
    async def scenario() -> AdaptiveLimiter:
        limiter = AdaptiveLimiter(8)
        tickets = [await limiter.acquire() for _ in range(8)]
        for ticket in tickets[:5]:  # five 429s from the same round: one halving
            limiter.release(ticket, "rate_limited")
        assert limiter.limit == 4 and limiter.decreases == 1
        for ticket in tickets[5:]:
            limiter.release(ticket, "ok")
        for _ in range(40):
            limiter.release(await limiter.acquire(), "ok")
        return limiter

    limiter = asyncio.run(scenario())
    assert limiter.limit == 8 and limiter.lowest == 4


def test_the_limiter_queues_beyond_its_limit() -> None:
    async def scenario() -> list[int]:
        limiter = AdaptiveLimiter(2)
        peak: list[int] = []

        async def one() -> None:
            ticket = await limiter.acquire()
            peak.append(limiter.in_flight)
            await asyncio.sleep(0.01)
            limiter.release(ticket, "ok")

        await asyncio.gather(*(one() for _ in range(10)))
        return peak

    assert max(asyncio.run(scenario())) == 2


def test_loop_thread() -> None:
    assert shared_loop() is shared_loop()
    loop = LoopThread(name="test-loop")

    async def inner() -> None:
        async def nothing() -> None:
            return None

        with pytest.raises(RuntimeError):
            loop.submit(nothing())

    async def double(x: int) -> int:
        return 2 * x

    assert loop.submit(double(21)).result(timeout=5) == 42
    loop.submit(inner()).result(timeout=5)
    loop.close()
    assert not loop.alive


def test_the_automatic_collector_is_paused_while_rows_run_and_back_after(emu: Any) -> None:
    import gc

    seen: list[bool] = []

    def watch(done: int, *_: Any) -> None:
        seen.append(gc.isenabled())

    assert gc.isenabled()
    run_batch(new_session(emu), WORDS[:6], "Echo {item}", concurrency=2, progress=watch)
    assert seen and not any(seen)  # paused while the rows ran (see deepseek_magic.batch.collector)
    assert gc.isenabled()
    with pytest.raises(ConfigError):  # switched back on when a batch is refused too
        run_batch(new_session(emu), WORDS[:2], "Echo {item}", concurrency=0)
    assert gc.isenabled()


def test_rows_are_collected_every_few_thousand_but_not_after_the_last(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from deepseek_magic.batch import collector

    generations: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: generations.append(generation) or 0)
    monkeypatch.setattr(collector, "COLLECT_EVERY", 4)
    run_batch(new_session(emu), WORDS[:8], "Echo {item}", concurrency=8)  # one wave, planned at once: no settling
    assert generations == [1], "after row 4 only: the batch is over after row 8"
    generations.clear()
    run_batch(new_session(emu), WORDS[:9], "Echo {item}", concurrency=2)  # rows planned while the first are out
    assert generations == [1, 1, 1], "once the rows are planned, then after rows 4 and 8"
