"""Batches on Dask: :func:`run_batch` per partition of a Dask DataFrame.

Why in the conversation layer: a partition builds its own
:class:`~deepseek_magic.conversation.session.Session` on the worker, while the
batch layer below only ever receives a session; ``dask`` is imported only here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from deepseek_magic.batch.results import batch_meta
from deepseek_magic.batch.runner import run_batch
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def batch_partition(
    frame: pd.DataFrame,
    *,
    settings: Mapping[str, Any],
    template: str,
    cache_path: str | None = None,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`run_batch` over one partition, with a Session built from ``settings`` (for ``map_partitions``).

    Top-level and free of closures so Dask can pickle it by reference. The API
    key travels inside ``settings`` (as a ``SecretStr``, masked in any repr) or
    comes from the worker's environment. ``columns`` makes every partition
    match the ``meta`` Dask was promised, even when some JSON field is absent
    from a partition's replies. No confirmation is asked on workers.
    """
    session = Session("dask-batch", settings=Settings.build(**dict(settings)))
    cache = ReplyCache(cache_path) if cache_path else None
    kwargs.setdefault("confirmed", True)
    try:
        result = run_batch(session, frame, template, cache=cache, progress=None, **kwargs)
    finally:
        if cache is not None:
            cache.close()
    if columns is not None:
        attrs = dict(result.attrs)
        result = result.reindex(columns=list(columns))
        result.attrs.update(attrs)
    return result


def run_dask_batch(
    ddf: Any,
    template: str,
    *,
    settings: Settings,
    meta: pd.DataFrame | None = None,
    cache: ReplyCache | str | os.PathLike[str] | None = None,
    send_key: bool = True,
    **kwargs: Any,
) -> Any:
    """The batch over a Dask DataFrame, partition by partition: a lazy Dask DataFrame.

    ``kwargs`` go to :func:`run_batch` on each worker (``json``, ``schema``,
    ``concurrency`` per partition, ``namespace``, Settings fields). With
    ``send_key`` the resolved API key rides along masked, so remote workers
    need no environment variable; pass ``send_key=False`` to rely on theirs.
    ``cache`` is a path (or a ReplyCache, by its path) each worker opens;
    workers on one machine share it safely.
    """
    try:
        import dask.dataframe  # noqa: F401
    except ImportError:
        raise ConfigError("Dask is not installed: pip install 'deepseek-magic[dask]'") from None
    values = settings.model_dump(exclude={"api_key"})
    key = settings.resolved_api_key()
    if send_key and key:
        values["api_key"] = SecretStr(key)
    if meta is None:
        json_mode = bool(kwargs.get("json") or kwargs.get("schema") is not None)
        index = getattr(getattr(ddf, "_meta", None), "index", None)
        meta = batch_meta(json_mode=json_mode, schema=kwargs.get("schema"), index=index)
    cache_path = str(cache.path) if isinstance(cache, ReplyCache) else (os.fspath(cache) if cache is not None else None)
    return ddf.map_partitions(
        batch_partition,
        settings=values,
        template=template,
        cache_path=cache_path,
        columns=list(meta.columns),
        meta=meta,
        **kwargs,
    )


__all__ = ["batch_partition", "run_dask_batch"]
