"""Scale-out: the same batch function over a Dask DataFrame on a LocalCluster, against the emulator."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.batch import run_batch
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.conversation.dask_batch import batch_partition, run_dask_batch
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.emulator import EmulatorConfig, run_in_thread

dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is an optional extra: pip install '.[dask]'")
distributed = pytest.importorskip("distributed", reason="dask.distributed is an optional extra: pip install '.[dask]'")

KEY = "sk-emulator"
FRAME = pd.DataFrame({"city": ["Paris", "Lima", "Oslo", "Kyiv", "Quito", "Accra"]}, index=[10, 11, 12, 13, 14, 15])
TEMPLATE = "One fact about {city}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY, ttft=0.02)) as emu:
        yield emu


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    # An IPython test shell earlier in the run installs its user module as sys.modules["__main__"]; it has no
    # __spec__, which multiprocessing's spawn (the workers) cannot handle. Workers get a plain __main__.
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def settings(emu: Any) -> Settings:
    return Settings.build(base_url=emu.base_url, api_key=KEY)


@pytest.mark.slow
def test_dask_batch_equals_the_local_batch(emulator: Any, dask_client: Any, tmp_path: Path) -> None:
    local = run_batch(Session(settings=settings(emulator)), FRAME, TEMPLATE)
    ddf = dd.from_pandas(FRAME, npartitions=2)
    lazy = run_dask_batch(ddf, TEMPLATE, settings=settings(emulator), cache=tmp_path / "replies.sqlite")
    before = len(emulator.requests)
    result = lazy.compute()
    assert len(emulator.requests) - before == len(FRAME)  # lazy until computed, then one request per row
    assert list(result.index) == list(FRAME.index)
    assert list(result.columns) == list(local.columns)
    assert result["reply"].tolist() == local["reply"].tolist()
    assert result["error"].isna().all()
    assert result["completion_tokens"].tolist() == local["completion_tokens"].tolist()
    # The workers filled the shared cache file, so the local batch now replays it.
    replayed = run_batch(
        Session(settings=settings(emulator)), FRAME, TEMPLATE, cache=ReplyCache(tmp_path / "replies.sqlite")
    )
    assert replayed["cached"].all()


@pytest.mark.slow
def test_dask_json_columns_come_from_the_schema(emulator: Any, dask_client: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}}}
    ddf = dd.from_pandas(FRAME, npartitions=2)
    result = run_dask_batch(ddf, TEMPLATE, settings=settings(emulator), schema=schema).compute()
    assert list(result.columns)[:2] == ["city", "population"]
    assert result["error"].isna().all() and result["city"].notna().all()
    with pytest.raises(ConfigError, match="meta"):
        run_dask_batch(ddf, TEMPLATE, settings=settings(emulator), json=True)


def test_batch_partition_is_self_contained(emulator: Any) -> None:
    values = settings(emulator).model_dump()
    part = batch_partition(FRAME.iloc[:2], settings=values, template=TEMPLATE, columns=["reply", "error", "extra"])
    assert list(part.columns) == ["reply", "error", "extra"] and part["error"].isna().all()
