"""One cost estimator: the session budget and the batch preview price the same request the same way."""

from __future__ import annotations

import pytest

from deepseek_magic import Session, Settings
from deepseek_magic.batch import BatchNeedsConfirmation, run_batch
from deepseek_magic.client.estimate import DEFAULT_OUTPUT_TOKENS, estimate_cost, prompt_tokens
from deepseek_magic.core.errors import BudgetExceeded
from deepseek_magic.core.pricing import PRICES
from deepseek_magic.providers import ChatRequest

MESSAGES = [{"role": "user", "content": "Name a prime"}]


def test_unset_max_tokens_assumes_the_documented_default() -> None:
    settings = Settings.build(api_key="sk-test")
    unset = estimate_cost(PRICES, settings, [MESSAGES])
    explicit = estimate_cost(PRICES, settings.merged(max_tokens=DEFAULT_OUTPUT_TOKENS), [MESSAGES])
    assert unset is not None and unset == explicit
    assert estimate_cost(PRICES, settings, []) == 0.0
    assert prompt_tokens(MESSAGES) == len('[{"role": "user", "content": "Name a prime"}]') // 3 + 1


def test_the_budget_and_the_batch_preview_agree() -> None:
    settings = Settings.build(api_key="sk-test", base_url="http://127.0.0.1:9")
    one = estimate_cost(PRICES, settings, [MESSAGES])
    assert one is not None
    # The batch preview of one row is that row's estimate, with the same output assumption.
    with pytest.raises(BatchNeedsConfirmation) as asked:
        run_batch(Session(settings=settings), ["prime"], "Name a {item}", confirm_above=0.0)
    assert asked.value.preview.estimate == pytest.approx(one)
    # The session budget refuses exactly when that same estimate crosses it.
    request = ChatRequest(messages=MESSAGES, settings=settings)
    Session(settings=settings, max_cost=one * 1.0001).check_budget(request)
    with pytest.raises(BudgetExceeded):
        Session(settings=settings, max_cost=one * 0.9999).check_budget(request)
