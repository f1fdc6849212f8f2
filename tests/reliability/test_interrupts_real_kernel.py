"""The kernel's Interrupt on a real ipykernel (jupyter_client): mid-reasoning, mid-answer, mid-tool-loop, mid-batch.

Each scenario interrupts at a point proven by an iopub message or by what the emulator received, then checks
that the execute_reply is a KeyboardInterrupt error (how long it took is printed, not asserted: how quickly a
stream stops is counted in tokens by tests/test_kernel_interrupt.py), that what should be kept was kept and what
should not be sent was not, and that the kernel answers the next cell. One kernel and one paced emulator serve the
whole module; follow-up cells switch the pacing off so the module stays fast.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kernel import Execution, Kernel, real_kernel

from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread

KEY = "sk-emulator"
#: Tokens per second: the reasoning (~70 tokens) and the answer (~120) each take seconds.
PACE = 40.0
ROWS = 40
SESSION = "get_ipython().magics_manager.registry['DeepSeekMagics'].get_session()"

Message = dict[str, Any]


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY, tps=PACE)) as running:
        yield running


@pytest.fixture(scope="module")
def kernel(emu: RunningEmulator) -> Iterator[Kernel]:
    env = {"DEEPSEEK_BASE_URL": emu.base_url, "DEEPSEEK_API_KEY": KEY, "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1"}
    with real_kernel(env) as k:
        assert k.run("%load_ext deepseek_magic").status == "ok"
        yield k


# ------------------------------------------------------------------------- helpers


@contextmanager
def unpaced(emu: RunningEmulator) -> Iterator[None]:
    """The emulator answers at once inside the block (its config is live)."""
    pace = emu.config.tps
    emu.config.tps = 0.0
    try:
        yield
    finally:
        emu.config.tps = pace


def chat_bodies(emu: RunningEmulator, since: int = 0) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests[since:] if r.path.endswith("/chat/completions")]


def widget_state(message: Message) -> dict[str, Any]:
    """What a widget got in ``message``: a state update, or the live reply widget's custom message of new content."""
    if message["msg_type"] != "comm_msg":
        return {}
    data = message["content"].get("data", {})
    if data.get("method") == "custom":
        return dict(data.get("content") or {})
    state: dict[str, Any] = data.get("state", {}) or {}
    return state


def reasoning_counts_tokens(message: Message) -> bool:
    """The live reply widget got reasoning and counts at least one token."""
    state = widget_state(message)
    return bool(state.get("r")) and int(state.get("n", 0)) >= 1


def answer_is_streaming(message: Message) -> bool:
    """A widget received answer text: the emulator's answers start with "[emulated]"."""
    return any(isinstance(value, str) and "[emulated]" in value for value in widget_state(message).values())


def printed(text: str) -> Callable[[Message], bool]:
    def predicate(message: Message) -> bool:
        return message["msg_type"] == "stream" and text in message["content"]["text"]

    return predicate


def interrupt(kernel: Kernel, execution: Execution, what: str) -> float:
    """Interrupt the kernel; return the seconds until the execute_reply arrived (printed)."""
    started = time.monotonic()
    kernel.manager.interrupt_kernel()
    deadline = started + 30
    while execution.reply is None and time.monotonic() < deadline:
        try:
            reply = kernel.client.get_shell_msg(timeout=0.02)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == execution.msg_id:
            execution.reply = reply
    latency = time.monotonic() - started
    kernel.finish(execution, timeout=10)  # drain its output up to idle
    print(f"interrupt {what}: execute_reply after {latency:.3f} s")
    assert execution.status == "error", execution.text()
    assert execution.reply is not None and execution.reply["content"]["ename"] == "KeyboardInterrupt"
    return latency


def facts(kernel: Kernel, expression: str) -> Any:
    """The JSON value of ``expression`` evaluated in the kernel (also proves the kernel answers)."""
    execution = kernel.run(f"import json as _json\nprint('FACTS=' + _json.dumps({expression}))", timeout=20)
    assert execution.status == "ok", execution.text()
    line = next(line for line in execution.text().splitlines() if line.startswith("FACTS="))
    return json.loads(line.removeprefix("FACTS="))


def turn_facts(kernel: Kernel, cell_id: str) -> Any:
    return facts(
        kernel,
        f"(lambda t: None if t is None else {{'status': t.status, 'content': t.reply.content, "
        f"'reasoning': t.reply.reasoning, 'interrupted': t.reply.interrupted}})({SESSION}.turn('cell-{cell_id}'))",
    )


def assert_next_cell_works(kernel: Kernel, emu: RunningEmulator, cell_id: str) -> list[dict[str, Any]]:
    """A plain cell and a %%deepseek cell both run; returns the messages the latter sent."""
    assert facts(kernel, "1 + 1") == 2
    before = len(emu.requests)
    with unpaced(emu):
        after = kernel.run("%%deepseek --no-think\nAre you still there?", cell_id=cell_id, timeout=20)
    assert after.status == "ok", after.text()
    assert "[emulated]" in after.text()
    (body,) = chat_bodies(emu, before)
    messages: list[dict[str, Any]] = body["messages"]
    return messages


# ----------------------------------------------------------------------- scenarios


def test_interrupt_mid_reasoning(kernel: Kernel, emu: RunningEmulator) -> None:
    execution = kernel.send("%%deepseek\nTell me a long story about a lighthouse keeper.", cell_id="mid-reasoning")
    kernel.wait_for_iopub(execution, reasoning_counts_tokens, timeout=30)
    interrupt(kernel, execution, "mid-reasoning")

    turn = turn_facts(kernel, "mid-reasoning")
    assert turn is not None and turn["status"] == "interrupted" and turn["interrupted"]
    assert turn["reasoning"] and not turn["content"], "stopped while thinking: reasoning kept, no answer yet"
    messages = assert_next_cell_works(kernel, emu, "after-reasoning")
    assert "lighthouse" not in json.dumps(messages), "an interrupted turn is kept but not sent as context"


def test_interrupt_mid_answer(kernel: Kernel, emu: RunningEmulator) -> None:
    execution = kernel.send("%%deepseek\nExplain how tides work, at length.", cell_id="mid-answer")
    kernel.wait_for_iopub(execution, answer_is_streaming, timeout=30)
    interrupt(kernel, execution, "mid-answer")
    final = [m for m in execution.iopub if m["msg_type"] == "update_display_data"][-1]["content"]["data"]
    assert "interrupted" in final["text/markdown"], "the live widget was replaced by a static copy saying so"

    turn = turn_facts(kernel, "mid-answer")
    assert turn is not None and turn["status"] == "interrupted" and turn["interrupted"]
    assert turn["content"].startswith("[emulated]") and turn["reasoning"]
    messages = assert_next_cell_works(kernel, emu, "after-answer")
    assert "tides" not in json.dumps(messages)


def test_interrupt_mid_tool_loop(kernel: Kernel, emu: RunningEmulator) -> None:
    define = kernel.run(
        "import time\n"
        "def slow_lookup(term: str) -> str:\n"
        '    """Look a term up, slowly."""\n'
        "    print('slow_lookup started', flush=True)\n"
        "    time.sleep(2)\n"
        "    return term\n"
    )
    assert define.status == "ok", define.text()
    before = len(emu.requests)
    execution = kernel.send(
        "%%deepseek --no-think --tools slow_lookup\nPlease call slow_lookup with term lighthouse.", cell_id="tool"
    )
    kernel.wait_for_iopub(execution, printed("slow_lookup started"), timeout=30)
    interrupt(kernel, execution, "mid-tool-loop")
    assert len(chat_bodies(emu, before)) == 1, "the round after the tool was never sent"

    turn = turn_facts(kernel, "tool")
    assert turn is not None, "the billed tool-call round is kept although a tool was running"
    assert turn["status"] == "interrupted" and turn["interrupted"] is True, turn
    messages = assert_next_cell_works(kernel, emu, "after-tool")
    assert all(m["role"] != "tool" and not m.get("tool_calls") for m in messages), (
        "no dangling tool call from the interrupted loop is sent as context"
    )


@pytest.mark.slow
def test_interrupt_mid_batch_then_rerun_sends_only_the_unfinished_rows(kernel: Kernel, emu: RunningEmulator) -> None:
    setup = kernel.run(f"import pandas as pd\ndf = pd.DataFrame({{'word': [f'w{{i}}' for i in range({ROWS})]}})")
    assert setup.status == "ok", setup.text()
    cell = "%%deepseek --over df --out result --concurrency 4 --no-think --max-tokens 24\nEcho {word}"
    before = len(emu.requests)
    execution = kernel.send(cell, cell_id="batch")
    deadline = time.monotonic() + 30
    # At concurrency 4, the 12th request goes out only after at least 8 rows have finished.
    while len(chat_bodies(emu, before)) < 12:
        assert time.monotonic() < deadline, "the batch did not get going"
        time.sleep(0.02)
    interrupt(kernel, execution, "mid-batch")
    first_run = len(chat_bodies(emu, before))

    assert facts(kernel, "'result' in globals()") is False
    kept = facts(kernel, f"sum(len(rows) for rows in {SESSION}.batch_state.values())")
    assert 8 <= kept < ROWS, f"{kept} finished rows kept"
    assert len(chat_bodies(emu, before)) == first_run < ROWS, "the interrupt stopped the batch: nothing sent after it"

    before = len(emu.requests)
    rerun = kernel.run(cell, cell_id="batch", timeout=60)
    assert rerun.status == "ok", rerun.text()
    sent = len(chat_bodies(emu, before))
    result = facts(
        kernel,
        "{'rows': len(result), 'errors': int(result['error'].notna().sum()), "
        "'empty': int((result['reply'].fillna('') == '').sum()), "
        "'resumed': result.attrs['batch']['resumed'], 'cached': result.attrs['batch']['cached'], "
        f"'left': len({SESSION}.batch_state)}}",
    )
    print(f"mid-batch: {first_run} sent before the interrupt, {kept} kept, {sent} sent on the re-run")
    cached = result.pop("cached")
    assert result == {"rows": ROWS, "errors": 0, "empty": 0, "resumed": kept, "left": 0}
    # A row in flight (at most 4 at concurrency 4) may finish and reach the reply cache after the interrupt
    # was taken: the re-run answers it from the cache. Every other unfinished row is sent again.
    assert 0 <= cached <= 4
    assert sent == ROWS - kept - cached, "only the rows that had not finished are sent again"
    assert_next_cell_works(kernel, emu, "after-batch")
