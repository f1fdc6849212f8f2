"""The kernel's Interrupt during a streaming reply, on a real kernel."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kernel import Kernel, real_kernel

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

KEY = "sk-emulator"


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with run_in_thread(EmulatorConfig(api_key=KEY, tps=40.0)) as emu:
        env = {"DEEPSEEK_BASE_URL": emu.base_url, "DEEPSEEK_API_KEY": KEY, "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1"}
        with real_kernel(env) as k:
            assert k.run("%load_ext deepseek_magic").status == "ok"
            yield k


def streaming(message: dict[str, Any]) -> bool:
    """Reasoning is flowing: the reasoning pane's live title counts at least one token."""
    if message["msg_type"] != "comm_msg":
        return False
    titles = message["content"].get("data", {}).get("state", {}).get("titles") or [""]
    return bool(re.match(r"Thinking… [1-9]", str(titles[0])))


def test_interrupt_mid_stream_keeps_the_partial_and_the_kernel_answers_next(kernel: Kernel) -> None:
    execution = kernel.send("%%deepseek\nTell me a long story about a lighthouse keeper.", cell_id="story")
    kernel.wait_for_iopub(execution, streaming, timeout=30)
    interrupted_at = time.monotonic()
    kernel.manager.interrupt_kernel()
    kernel.finish(execution, timeout=30)
    stopped_after = time.monotonic() - interrupted_at
    assert execution.status == "error"
    assert execution.reply is not None and execution.reply["content"]["ename"] == "KeyboardInterrupt"
    assert stopped_after < 1.5, f"the stream stopped {stopped_after:.2f} s after the interrupt"
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
