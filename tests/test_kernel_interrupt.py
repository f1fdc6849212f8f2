"""The kernel's Interrupt during a streaming reply, on a real kernel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from kernel import Kernel, real_kernel

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

KEY = "sk-emulator"
#: Tokens per second the emulator streams at.
PACE = 40


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with run_in_thread(EmulatorConfig(api_key=KEY, tps=PACE)) as emu:
        env = {"DEEPSEEK_BASE_URL": emu.base_url, "DEEPSEEK_API_KEY": KEY, "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1"}
        with real_kernel(env) as k:
            assert k.run("%load_ext deepseek_magic").status == "ok"
            yield k


def _content(message: dict[str, Any]) -> dict[str, Any]:
    """What the live reply widget got in ``message`` (a custom message of new content, or a state update)."""
    if message["msg_type"] != "comm_msg":
        return {}
    data = message["content"].get("data", {})
    return dict(data.get("content") or {}) if data.get("method") == "custom" else dict(data.get("state") or {})


def streaming(message: dict[str, Any]) -> bool:
    """Reasoning is flowing: the live widget got reasoning text and counts at least one token."""
    content = _content(message)
    return bool(content.get("r")) and int(content.get("n", 0)) >= 1


def reasoning_tokens(message: dict[str, Any]) -> int | None:
    """The reasoning token count the widget shows: live ("n"), or in the final title ("… · 30 tokens")."""
    content = _content(message)
    if "n" in content:
        return int(content["n"])
    found = re.search(r"· ([\d,]+) tokens?$", str(content.get("title", "")))
    return None if found is None else int(found.group(1).replace(",", ""))


@pytest.mark.slow
def test_interrupt_mid_stream_keeps_the_partial_and_the_kernel_answers_next(kernel: Kernel) -> None:
    execution = kernel.send("%%deepseek\nTell me a long story about a lighthouse keeper.", cell_id="story")
    seen = kernel.wait_for_iopub(execution, streaming, timeout=30)
    at_interrupt = reasoning_tokens(seen)
    kernel.manager.interrupt_kernel()
    kernel.finish(execution, timeout=30)
    assert execution.status == "error"
    assert execution.reply is not None and execution.reply["content"]["ename"] == "KeyboardInterrupt"
    counts = [n for n in map(reasoning_tokens, execution.iopub) if n is not None]
    assert at_interrupt is not None and counts[-1] >= at_interrupt
    # The emulator paces 40 tokens a second: the stream stopped within about a second's worth of tokens
    # (counted, not timed), far short of the whole reasoning.
    assert counts[-1] - at_interrupt <= PACE, f"{counts[-1] - at_interrupt} reasoning tokens came after the interrupt"
    updates = [m for m in execution.iopub if m["msg_type"] == "update_display_data"]
    final = updates[-1]["content"]["data"]
    assert "interrupted" in final["text/markdown"] and "interrupted" in final["text/html"]
    assert "application/vnd.jupyter.widget-view+json" not in final, "the live widget was replaced by a static copy"

    check = kernel.run(
        "t = get_ipython().magics_manager.registry['DeepSeekMagics'].get_session().turn('cell-story')\n"
        "print(t.status, bool(t.reply.reasoning or t.reply.content), t.reply.interrupted)"
    )
    assert check.status == "ok" and "interrupted True True" in check.text()

    after = kernel.run("%%deepseek --no-think\nAre you still there?", cell_id="next")
    assert after.status == "ok" and "[emulated]" in after.text()
    sent = kernel.run(
        "s = get_ipython().magics_manager.registry['DeepSeekMagics'].get_session()\n"
        "print([t.status for t in s.turns], len(s.history_before('cell-later')))"
    )
    assert "['interrupted', 'complete'] 1" in sent.text(), "the interrupted turn is kept but not sent as context"
