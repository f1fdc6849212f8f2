"""Scale-out: Session.batch over a Dask DataFrame, on a LocalCluster with worker processes and on Dask's
threaded scheduler, against the emulator (which counts the requests it has in flight at once)."""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.batch import BatchNeedsConfirmation, BatchPreview, run_batch
from deepseek_magic.batch.gate import LocalGate
from deepseek_magic.conversation.dask_batch import account_concurrency, batch_partition
from deepseek_magic.core.errors import BudgetExceeded, ConfigError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread

dask = pytest.importorskip("dask", reason="dask is an optional extra: pip install '.[dask]'")
dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is an optional extra: pip install '.[dask]'")
distributed = pytest.importorskip("distributed", reason="dask.distributed is an optional extra: pip install '.[dask]'")

KEY = "sk-emulator"
FRAME = pd.DataFrame({"city": ["Paris", "Lima", "Oslo", "Kyiv", "Quito", "Accra"]}, index=[10, 11, 12, 13, 14, 15])
TEMPLATE = "One fact about {city}"
#: Enough rows over enough partitions that an uncapped run would have far more than CAP requests in flight.
WIDE = pd.DataFrame({"n": range(24)}, index=range(100, 124))
CAP = 3


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY, ttft=0.15)) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    emulator.state.peak_in_flight = 0
    yield emulator
    emulator.config.max_concurrency = None


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    # An IPython test shell earlier in the run installs its user module as sys.modules["__main__"]; it has no
    # __spec__, which multiprocessing's spawn (the workers) cannot handle. Workers get a plain __main__.
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


@pytest.fixture
def on_cluster(dask_client: Any) -> Iterator[Any]:
    """The cluster as the default client for this test only (Dask computes there; Session.batch finds it)."""
    with dask_client.as_current():
        yield dask_client


def settings(emu: Any, **options: Any) -> Settings:
    return Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01, **options)


def chat_requests(emu: Any) -> int:
    return sum(1 for r in emu.requests if r.path.endswith("/chat/completions"))


def test_on_a_cluster_every_row_is_answered_in_order_within_the_cap(emu: Any, on_cluster: Any) -> None:
    session = Session(settings=settings(emu))
    lazy = session.batch(dd.from_pandas(WIDE, npartitions=4), "Say {n}", concurrency=CAP, send_key=True)
    before = chat_requests(emu)
    assert chat_requests(emu) == before  # lazy: nothing sent yet
    result = lazy.compute()
    assert chat_requests(emu) - before == len(WIDE)
    assert list(result.index) == list(WIDE.index)
    assert result["error"].isna().all()
    for n, reply in zip(WIDE["n"], result["reply"], strict=True):
        assert f"Say {n}" in reply
    assert 1 <= emu.state.peak_in_flight <= CAP  # four partitions on two processes, one cap


def test_the_cluster_result_has_the_local_columns_and_the_cache_answers_a_recompute(
    emu: Any, on_cluster: Any, tmp_path: Path
) -> None:
    local = run_batch(Session(settings=settings(emu)), FRAME, TEMPLATE)

    def lazy() -> Any:
        return Session(settings=settings(emu)).batch(
            dd.from_pandas(FRAME, npartitions=2), TEMPLATE, cache=tmp_path / "replies.sqlite", send_key=True
        )

    first = lazy().compute()
    assert list(first.columns) == list(local.columns)
    assert first["reply"].tolist() == local["reply"].tolist()
    before = chat_requests(emu)
    again = lazy().compute()  # the computation run again: the rows answered before come from the cache
    assert chat_requests(emu) == before
    assert again["cached"].all() and again["reply"].tolist() == first["reply"].tolist()


def test_on_a_cluster_progress_reaches_the_notebook(emu: Any, on_cluster: Any) -> None:
    seen: list[tuple[int, int]] = []
    started: list[BatchPreview] = []

    class Recorder:
        def start(self, preview: BatchPreview) -> None:
            started.append(preview)

        def update(self, done: int, total: int, errors: int, tokens: int, cost: float) -> None:
            seen.append((done, total))

        def close(self) -> None:
            pass

    lazy = Session(settings=settings(emu)).batch(
        dd.from_pandas(WIDE, npartitions=3), "Count {n}", concurrency=6, send_key=True, progress=Recorder()
    )
    lazy.compute()
    for _ in range(100):  # the messages come through the scheduler; give the follower a moment
        if seen and seen[-1][0] == len(WIDE):
            break
        asyncio.run(asyncio.sleep(0.05))
    assert started and started[0].total == len(WIDE) and started[0].to_send == len(WIDE)
    assert seen[-1] == (len(WIDE), len(WIDE))


def test_the_key_is_in_no_task_repr_pickle_or_token(emu: Any, on_cluster: Any) -> None:
    import cloudpickle

    canary = "sk-canary-0123456789abcdef"
    session = Session(settings=Settings.build(base_url=emu.base_url, api_key=canary))
    for send_key in (False, True):
        lazy = session.batch(dd.from_pandas(FRAME, npartitions=2), TEMPLATE, send_key=send_key)
        graph = dict(lazy.__dask_graph__())
        assert canary not in repr(graph) and canary not in repr(lazy)
        assert canary.encode() not in cloudpickle.dumps(graph)  # what the scheduler and the dashboard get
        assert canary not in str(lazy.__dask_keys__()) and canary not in dask.base.tokenize(lazy)


def test_without_the_key_on_the_workers_the_computation_says_so(emu: Any, on_cluster: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    lazy = Session(settings=settings(emu)).batch(dd.from_pandas(FRAME, npartitions=2), TEMPLATE)  # send_key=False
    before = chat_requests(emu)
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        lazy.compute()
    assert chat_requests(emu) == before


def test_threaded_scheduler_shares_a_process_local_cap(emu: Any) -> None:
    lazy = Session(settings=settings(emu)).batch(dd.from_pandas(WIDE, npartitions=4), "Add {n}", concurrency=CAP)
    result = lazy.compute(scheduler="threads", num_workers=4)
    assert result["error"].isna().all() and list(result.index) == list(WIDE.index)
    for n, reply in zip(WIDE["n"], result["reply"], strict=True):
        assert f"Add {n}" in reply
    assert 1 <= emu.state.peak_in_flight <= CAP


def test_the_budget_and_the_preview_cover_the_whole_frame(emu: Any) -> None:
    ddf = dd.from_pandas(WIDE, npartitions=4)
    before = chat_requests(emu)
    broke = Session(settings=settings(emu), max_cost=1e-9).batch(ddf, "Spend {n}")
    with pytest.raises(BudgetExceeded):
        broke.compute(scheduler="threads")
    with pytest.raises(BatchNeedsConfirmation) as caught:
        Session(settings=settings(emu)).batch(ddf, "Spend {n}", confirm_above=0.0).compute(scheduler="threads")
    assert chat_requests(emu) == before  # refused before any partition sent anything
    preview = caught.value.preview
    assert preview.total == preview.to_send == len(WIDE) and preview.estimate is not None and preview.estimate > 0


def test_a_429_pause_is_shared_through_the_gate(emu: Any) -> None:
    emu.config.max_concurrency = 2
    gate = LocalGate(8)
    result = run_batch(Session(settings=settings(emu)), list(range(16)), "Limit {item}", concurrency=8, gate=gate)
    assert result["error"].isna().all() and result.attrs["batch"]["rate_limited"] > 0
    assert gate.paused_until() > 0  # every partition sharing the gate waits out the refusal
    assert gate.free == gate.cap  # every slot was given back


def test_local_gate_takes_what_is_free_and_waits_for_the_first() -> None:
    gate = LocalGate(3)
    assert gate.take(2, None) == 2 and gate.take(5, 0) == 1 and gate.take(1, 0.01) == 0
    gate.give(3)
    assert gate.take(10, 0) == 3
    gate.pause(5.0)
    gate.pause(1.0)
    assert gate.paused_until() == 5.0


def test_an_interrupted_wait_for_a_slot_gives_a_late_grant_back() -> None:
    from deepseek_magic.batch.runner import _take_first

    gate = LocalGate(1)
    assert gate.take(1, 0) == 1  # another partition holds the only slot

    async def scenario() -> None:
        waiting = asyncio.create_task(_take_first(gate, 1))
        await asyncio.sleep(0.1)
        waiting.cancel()
        gate.give(1)  # freed while the helper thread still waits: it takes the slot after the cancel
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for _ in range(40):
            if gate.free == 1:
                break
            await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert gate.free == 1  # given straight back, not lost to the shared cap


def test_the_default_cap_is_the_models_account_limit() -> None:
    assert account_concurrency(Settings.build(model="deepseek-flash")) == 2500
    assert account_concurrency(Settings.build(model="deepseek-v4-flash")) == 2500  # an alias of Flash
    assert account_concurrency(Settings.build(model="deepseek-v4-pro")) == 500
    assert account_concurrency(Settings.build(provider="anyfast")) == 16  # no documented limit


def test_json_columns_come_from_the_schema(emu: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
    ddf = dd.from_pandas(FRAME, npartitions=2)
    result = Session(settings=settings(emu)).batch(ddf, TEMPLATE, schema=schema).compute(scheduler="threads")
    assert list(result.columns)[:2] == ["city", "population"]
    assert result["error"].isna().all() and result["city"].notna().all()
    with pytest.raises(ConfigError, match="meta"):
        Session(settings=settings(emu)).batch(ddf, TEMPLATE, json=True)


def test_batch_partition_is_self_contained(emu: Any) -> None:
    values = settings(emu).model_dump()
    part = batch_partition(
        FRAME.iloc[:2], kind=Session, settings=values, template=TEMPLATE, columns=["reply", "error", "extra"]
    )
    assert list(part.columns) == ["reply", "error", "extra"] and part["error"].isna().all()
