"""The reply-cache key comes from the provider's canonical body: cache.py knows no provider's fields."""

from __future__ import annotations

import inspect
from typing import Any

from deepseek_magic.client import cache
from deepseek_magic.client.cache import CacheKeyed, _canonical_body
from deepseek_magic.providers import get_provider


def test_cache_module_names_no_provider_body_field() -> None:
    source = inspect.getsource(cache)
    for field in ("taskUUID", "deliveryMethod", "stream_options", '"stream"'):
        assert field not in source, f"cache.py knows the provider field {field}"


def test_each_builtin_provider_says_what_only_changes_delivery() -> None:
    deepseek = get_provider("deepseek")
    runware = get_provider("runware")
    assert isinstance(deepseek, CacheKeyed) and isinstance(runware, CacheKeyed)
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    assert _canonical_body(deepseek, body) == {"model": "m", "messages": []}
    assert body["stream"] is True, "the body sent is untouched"
    tasks = [{"taskType": "textInference", "taskUUID": "u1", "deliveryMethod": "stream", "model": "m"}]
    assert _canonical_body(runware, tasks) == [{"taskType": "textInference", "model": "m"}]


def test_a_provider_without_the_seam_is_keyed_on_its_whole_body() -> None:
    class Plain:
        pass

    body: dict[str, Any] = {"model": "m", "stream": True}
    assert _canonical_body(Plain(), body) is body
