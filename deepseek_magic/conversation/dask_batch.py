"""Batches on Dask: ``Session.batch(dask_frame, template)`` is a lazy Dask DataFrame.

Why in the conversation layer: a partition builds its own session on the
worker (of the caller's session class, handed along: ``Session.batch`` imports
this module, so it does not import ``session`` back), while the batch layer
below only ever receives a session; ``dask`` is imported only here (and
``distributed`` only in :mod:`.dask_cluster`).

The graph, per partition ``p`` of the input::

    preview(p)  ─┐
    preview(q)  ─┼─> approve (sums the previews; the budget and confirm_above are checked here, once)
    …           ─┘        │
    batch(p, approved) <──┘   batch(q, approved) …   (every partition waits for the approval)

* **Cost**: ``preview`` plans every row of its partition (interpolation, the
  reply cache) and estimates what it would send; ``approve`` refuses the whole
  computation (``BatchNeedsConfirmation``, ``BudgetExceeded``) before any
  partition sends anything. The budget is the session's ``max_cost`` minus what
  the session had spent when ``Session.batch`` was called.
* **Concurrency** is one cap for the whole computation, by default the model's
  account limit (``ModelInfo.concurrency``: 2,500 on DeepSeek Flash, 500 on Pro;
  :data:`~deepseek_magic.batch.runner.DEFAULT_CONCURRENCY` where none is
  documented). On a ``distributed`` cluster it is a ``distributed.Semaphore``
  and a 429's pause is a ``distributed.Variable`` every partition reads; with
  Dask's threaded scheduler it is a process-local gate (:mod:`deepseek_magic.batch.gate`).
* **The key** is never in the graph: tasks carry a random token. In the
  process that called ``Session.batch`` the token finds the session's key
  (threaded scheduler); on workers elsewhere the key comes from the workers'
  own environment (``DEEPSEEK_API_KEY``…), or, with ``send_key=True``, from a
  worker plugin that the distributed client installs (the key then travels to
  the scheduler and the workers, not into any task, repr, token or the
  dashboard).
* **Retries**: with a reply cache (``cache=`` a path every worker can open),
  rows answered before a failed or recomputed partition come from the cache.
* **Progress**: ``progress=`` (a reporter from :mod:`deepseek_magic.ui.batch_progress`
  or a callable) hears the sum over partitions while the frame computes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr

from deepseek_magic.batch.gate import SharedGate, local_gate
from deepseek_magic.batch.results import BatchPreview, ProgressArg, batch_meta
from deepseek_magic.batch.runner import DEFAULT_CONCURRENCY, _check_cost, preview_batch, run_batch
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.dask_keys import KEYS
from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.pricing import PRICES, PriceTable
from deepseek_magic.providers import get_provider

if TYPE_CHECKING:
    import pandas as pd

    from deepseek_magic.conversation.session import Session

#: Progress hubs by token, in the process that called ``Session.batch``.
_HUBS: dict[str, ProgressHub] = {}


def account_concurrency(settings: Settings) -> int:
    """The model's documented per-account concurrency, else :data:`DEFAULT_CONCURRENCY`."""
    for model in get_provider(settings.provider).models:
        if settings.model == model.name or settings.model in model.aliases:
            return model.concurrency or DEFAULT_CONCURRENCY
    return DEFAULT_CONCURRENCY


class ProgressHub:
    """Sums what every partition reports and hands the totals to one reporter."""

    def __init__(self, progress: ProgressArg) -> None:
        self.progress = progress
        self.parts: dict[int, tuple[int, int, int, float]] = {}
        self.total = 0
        self.closed = False
        self.lock = threading.Lock()

    def start(self, preview: BatchPreview) -> None:
        with self.lock:
            self.total = preview.total
            start = getattr(self.progress, "start", None)
            if callable(start):
                start(preview)

    def report(self, part: int, done: int, errors: int, tokens: int, cost: float) -> None:
        with self.lock:
            self.parts[part] = (done, errors, tokens, cost)
            sums = [sum(figures[i] for figures in self.parts.values()) for i in range(4)]
            update = getattr(self.progress, "update", None)
            call = update if callable(update) else self.progress
            if callable(call):
                call(int(sums[0]), self.total, int(sums[1]), int(sums[2]), float(sums[3]))
            if self.total and sums[0] >= self.total and not self.closed:
                self.closed = True
                close = getattr(self.progress, "close", None)
                if callable(close):
                    close()


def _publish(token: str, message: dict[str, Any]) -> None:
    """A progress message for the hub: directly in this process, else through the cluster (if any)."""
    hub = _HUBS.get(token)
    if hub is not None:
        if "preview" in message:
            hub.start(BatchPreview(**message["preview"]))
        else:
            hub.report(message["part"], *message["figures"])
        return
    if _on_cluster_worker():
        from deepseek_magic.conversation.dask_cluster import publish

        publish(token, message)


def _on_cluster_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def _worker_session(
    kind: type[Session], values: Mapping[str, Any], token: str, system: str | None, prices: PriceTable
) -> Session:
    """The session a task works with: the caller's settings, and the key the user chose to make reachable."""
    settings = Settings.build(**dict(values))
    key = KEYS.get(token)
    if key is not None:
        settings = settings.merged(api_key=key)
    return kind("dask-batch", settings=settings, system=system, prices=prices)


def preview_partition(
    frame: pd.DataFrame,
    *,
    kind: type[Session],
    values: Mapping[str, Any],
    token: str,
    template: str,
    system: str | None,
    prices: PriceTable,
    cache_path: str | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """One partition's :class:`BatchPreview`, as a dict (sends nothing)."""
    session = _worker_session(kind, values, token, system, prices)
    cache = ReplyCache(cache_path) if cache_path else None
    try:
        preview = preview_batch(session, frame, template, cache=cache, **dict(options))
    finally:
        if cache is not None:
            cache.close()
    return vars(preview).copy()


def approve(
    previews: Sequence[Mapping[str, Any]],
    *,
    token: str,
    cap: int,
    budget: float | None,
    confirm_above: float | None,
    confirmed: bool,
) -> dict[str, Any]:
    """The whole frame's preview, after the budget and the confirmation threshold allowed it."""
    estimates = [p["estimate"] for p in previews]
    total = BatchPreview(
        total=sum(int(p["total"]) for p in previews),
        to_send=sum(int(p["to_send"]) for p in previews),
        cached=sum(int(p["cached"]) for p in previews),
        resumed=sum(int(p["resumed"]) for p in previews),
        failed=sum(int(p["failed"]) for p in previews),
        estimate=None if any(e is None for e in estimates) else float(sum(estimates)),
        concurrency=cap,
    )
    # The whole frame against what was left of the session's budget when Session.batch was called.
    _check_cost(cast("Session", _Budget(budget)), total, confirm_above, confirmed)
    _publish(token, {"preview": vars(total).copy()})
    return vars(total).copy()


class _Budget:
    """What the budget check reads of a session: the budget left, nothing spent since."""

    cost = 0.0

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost


def batch_partition(
    frame: pd.DataFrame,
    approved: Mapping[str, Any] | None = None,
    *,
    kind: type[Session],
    settings: Mapping[str, Any],
    template: str,
    token: str = "",
    cap: int | None = None,
    part: int = 0,
    system: str | None = None,
    prices: PriceTable | None = None,
    cache_path: str | None = None,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`run_batch` over one partition, within the computation's shared cap.

    Top-level and free of closures so Dask pickles it by reference.
    ``approved`` is :func:`approve`'s result (the partition only runs once the
    whole frame's cost was allowed). ``columns`` makes every partition match
    the ``meta`` Dask was promised, even when some JSON field is absent from a
    partition's replies. No confirmation is asked on workers.
    """
    session = _worker_session(kind, settings, token, system, prices if prices is not None else PRICES)
    cache = ReplyCache(cache_path) if cache_path else None
    gate: SharedGate | None = None
    if cap is not None:
        gate = _cluster_gate(token, cap) if _on_cluster_worker() else local_gate(token, cap)
    kwargs["confirmed"] = True
    kwargs.setdefault("concurrency", cap or DEFAULT_CONCURRENCY)
    kwargs["concurrency"] = max(1, min(int(kwargs["concurrency"]), len(frame) or 1))

    def report(done: int, total: int, errors: int, tokens: int, cost: float) -> None:
        _publish(token, {"part": part, "figures": (done, errors, tokens, cost)})

    try:
        result = run_batch(
            session, frame, template, cache=cache, progress=report if token else None, gate=gate, **kwargs
        )
    finally:
        if cache is not None:
            cache.close()
    if columns is not None:
        attrs = dict(result.attrs)
        result = result.reindex(columns=list(columns))
        result.attrs.update(attrs)
    return result


def _cluster_gate(token: str, cap: int) -> SharedGate:
    from deepseek_magic.conversation.dask_cluster import cluster_gate

    return cluster_gate(token, cap)


def dask_batch(
    session: Session,
    ddf: Any,
    template: str,
    *,
    concurrency: int | None = None,
    cache: ReplyCache | str | os.PathLike[str] | None = None,
    send_key: bool = False,
    meta: pd.DataFrame | None = None,
    progress: ProgressArg = None,
    confirm_above: float | None = None,
    confirmed: bool = False,
    **options: Any,
) -> Any:
    """``Session.batch`` over a Dask DataFrame: a lazy Dask DataFrame with the columns of the pandas result.

    ``concurrency`` caps the requests in flight over the whole computation
    (default: the model's account limit). ``options`` are those of
    :func:`~deepseek_magic.batch.run_batch` (``json``, ``schema``,
    ``namespace``, ``system``, Settings fields). See the module docstring for
    cost, key, retries and progress.
    """
    try:
        import dask.dataframe as dd
        from dask.delayed import delayed
    except ImportError:
        raise ConfigError("Dask is not installed: pip install 'deepseek-magic[dask]'") from None
    json_mode = bool(options.get("json") or options.get("schema") is not None)
    if meta is None:
        index = getattr(getattr(ddf, "_meta", None), "index", None)
        meta = batch_meta(json_mode=json_mode, schema=options.get("schema"), index=index)
    # Settings fields go into the settings shipped to workers; ``stream`` and ``max_retries`` stay batch options.
    shipped = [name for name in options if name in Settings.model_fields and name not in ("stream", "max_retries")]
    settings_options = {name: options.pop(name) for name in shipped}
    settings = session.settings.merged(**settings_options) if settings_options else session.settings
    cap = concurrency if concurrency is not None else account_concurrency(settings)
    if cap < 1:
        raise ConfigError(f"concurrency must be at least 1, got {cap}")
    token = uuid.uuid4().hex
    key = settings.resolved_api_key()
    if key:
        KEYS[token] = SecretStr(key)  # this process only (Dask's threaded scheduler); never in the graph
    client = _distributed_client()
    if client is not None:
        from deepseek_magic.conversation.dask_cluster import prepare_cluster

        prepare_cluster(client, token, SecretStr(key) if send_key and key else None, progress is not None)
    elif send_key:
        raise ConfigError("send_key=True needs a distributed cluster (a distributed.Client); here the key is local")
    if progress is not None:
        hub = _HUBS[token] = ProgressHub(progress)
        if client is not None:
            from deepseek_magic.conversation.dask_cluster import follow_progress

            follow_progress(client, token, hub)
    values = settings.model_dump(exclude={"api_key"})
    system = options.pop("system", None)
    if system is None:
        system = session.sticky_system(None)
    cache_path = str(cache.path) if isinstance(cache, ReplyCache) else (os.fspath(cache) if cache is not None else None)
    budget = None if session.max_cost is None else session.max_cost - session.cost
    common = {"kind": type(session), "token": token, "system": system, "prices": session.prices}
    common["cache_path"] = cache_path
    parts = ddf.to_delayed()
    previews = [
        delayed(preview_partition, pure=False)(part, values=values, template=template, options=options, **common)
        for part in parts
    ]
    approved = delayed(approve, pure=False)(
        previews, token=token, cap=cap, budget=budget, confirm_above=confirm_above, confirmed=confirmed
    )
    results = [
        delayed(batch_partition, pure=False)(
            part,
            approved,
            settings=values,
            template=template,
            cap=cap,
            part=number,
            columns=list(meta.columns),
            **common,
            **options,
        )
        for number, part in enumerate(parts)
    ]
    divisions = ddf.divisions if getattr(ddf, "known_divisions", False) else None
    lazy = dd.from_delayed(results, meta=meta, divisions=divisions, verify_meta=False)
    with contextlib.suppress(TypeError):  # the key and the hub live as long as the lazy frame that may compute
        weakref.finalize(lazy, _forget, token)
    return lazy


def _forget(token: str) -> None:
    KEYS.pop(token, None)
    _HUBS.pop(token, None)


def _distributed_client() -> Any:
    """The default ``distributed.Client`` when there is one (Dask then computes on its cluster)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


__all__ = ["account_concurrency", "batch_partition", "dask_batch"]
