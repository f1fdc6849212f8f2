"""Issue #13 on a real ipykernel: what was billed survives interrupts and cancellation; the cache never
breaks or stalls a cell.

One kernel and one emulator serve the module (unpaced, except where a scenario needs time to interrupt).
Interrupts land at points proven by the kernel's own output; after each, the next cell must work.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cache_lock import lock_held
from kernel import Execution, Kernel, real_kernel

from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread

KEY = "sk-emulator"
#: Issue #13: with the cache locked by another process, a cell finishes within this many seconds.
CACHE_CELL_LIMIT = 10.0
ROWS = 30
SESSION = "get_ipython().magics_manager.registry['DeepSeekMagics'].get_session()"


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def kernel(emu: RunningEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    env = {
        "DEEPSEEK_BASE_URL": emu.base_url,
        "DEEPSEEK_API_KEY": KEY,
        "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1",
        "DEEPSEEK_MAGIC_CACHE_DIR": str(tmp_path_factory.mktemp("kernel-cache")),
    }
    with real_kernel(env) as k:
        assert k.run("%load_ext deepseek_magic").status == "ok"
        yield k


# ------------------------------------------------------------------------------------------ helpers


def chat_bodies(emu: RunningEmulator, since: int = 0) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests[since:] if r.path.endswith("/chat/completions")]


def printed(text: str) -> Callable[[dict[str, Any]], bool]:
    def predicate(message: dict[str, Any]) -> bool:
        return message["msg_type"] == "stream" and text in message["content"]["text"]

    return predicate


def interrupt(kernel: Kernel, execution: Execution, what: str) -> None:
    """Interrupt the kernel and check the cell ended in KeyboardInterrupt (the latency is printed, not bounded:
    a loaded machine is slow, a stalled kernel never answers)."""
    started = time.monotonic()
    kernel.manager.interrupt_kernel()
    while execution.reply is None and time.monotonic() < started + 30:
        try:
            reply = kernel.client.get_shell_msg(timeout=0.02)
        except queue.Empty:
            continue
        if reply["parent_header"].get("msg_id") == execution.msg_id:
            execution.reply = reply
    latency = time.monotonic() - started
    kernel.finish(execution, timeout=10)
    print(f"interrupt {what}: execute_reply after {latency:.3f} s")
    assert execution.reply is not None and execution.reply["content"]["ename"] == "KeyboardInterrupt"


def facts(kernel: Kernel, expression: str) -> Any:
    """The JSON value of ``expression`` evaluated in the kernel (also proves the kernel answers)."""
    execution = kernel.run(f"import json as _json\nprint('FACTS=' + _json.dumps({expression}))", timeout=20)
    assert execution.status == "ok", execution.text()
    line = next(line for line in execution.text().splitlines() if line.startswith("FACTS="))
    return json.loads(line.removeprefix("FACTS="))


# ------------------------------------------------------------------------------------------ interrupts


def test_interrupt_while_a_tool_runs_keeps_the_billed_round(kernel: Kernel, emu: RunningEmulator) -> None:
    define = kernel.run(
        "import time\n"
        "def very_slow_lookup(term: str) -> str:\n"
        '    """Look a term up, very slowly."""\n'
        "    print('very_slow_lookup started', flush=True)\n"
        "    time.sleep(60)\n"
        "    return term\n"
    )
    assert define.status == "ok", define.text()
    before = len(emu.requests)
    execution = kernel.send(
        "%%deepseek -s tools --no-think --tools very_slow_lookup\nPlease call very_slow_lookup with term harbour.",
        cell_id="tool-running",
    )
    kernel.wait_for_iopub(execution, printed("very_slow_lookup started"), timeout=30)
    interrupt(kernel, execution, "while a tool runs")
    assert len(chat_bodies(emu, before)) == 1

    session = SESSION.replace("get_session()", "get_session('tools')")
    turn = facts(
        kernel,
        f"(lambda s, t: {{'status': t.status, 'calls': [c.name for c in t.reply.tool_calls], "
        f"'tokens': t.reply.usage.total_tokens, 'prompt': t.reply.usage.prompt_tokens, "
        f"'session': s.usage.total_tokens}})"
        f"({session}, {session}.turn('cell-tool-running'))",
    )
    assert turn["status"] == "interrupted" and turn["calls"] == ["very_slow_lookup"]
    assert turn["tokens"] > 0 and turn["session"] == turn["tokens"], "the billed round is in usage"
    usage = kernel.run("%deepseek usage", timeout=20)
    row = next(line for line in usage.text().splitlines() if "tools" in line)
    assert usage.status == "ok" and f"{turn['prompt']:,}" in row, "%deepseek usage shows the round"


def test_cancelling_aask_keeps_the_billed_round(kernel: Kernel) -> None:
    start = kernel.run(
        "import asyncio\n"
        "from deepseek_magic import Session\n"
        "async def wait_forever(city: str) -> str:\n"
        '    """Waits for a long time."""\n'
        "    print('wait_forever started', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "    return city\n"
        "aask_session = Session('aask')\n"
        "aask_task = asyncio.ensure_future(\n"
        "    aask_session.aask(\n"
        "        'Please call wait_forever with city Rome.', tools=[wait_forever], key='a', thinking=False\n"
        "    )\n"
        ")\n"
        "for _ in range(300):\n"
        "    if aask_session.usage.total_tokens or getattr(aask_task, 'done')():\n"
        "        break\n"
        "    await asyncio.sleep(0.02)\n"
    )
    assert start.status == "ok", start.text()
    cancel = kernel.run(
        "await asyncio.sleep(0.3)\n"
        "aask_task.cancel()\n"
        "try:\n"
        "    await aask_task\n"
        "except asyncio.CancelledError:\n"
        "    print('cancelled')\n"
    )
    assert cancel.status == "ok" and "cancelled" in cancel.text(), cancel.text()
    turn = facts(
        kernel,
        "(lambda t: {'status': t.status, 'calls': [c.name for c in t.reply.tool_calls], "
        "'tokens': t.reply.usage.total_tokens, 'session': aask_session.usage.total_tokens})(aask_session.turn('a'))",
    )
    assert turn["status"] == "interrupted" and turn["calls"] == ["wait_forever"]
    assert turn["tokens"] > 0 and turn["session"] == turn["tokens"]


@pytest.mark.slow
def test_an_interrupted_batch_counts_what_it_paid(kernel: Kernel, emu: RunningEmulator) -> None:
    setup = kernel.run(f"words = [f'w{{i}}' for i in range({ROWS})]")
    assert setup.status == "ok", setup.text()
    before = len(emu.requests)
    emu.config.tps = 40.0
    try:
        execution = kernel.send(
            "%%deepseek --over words --out spent -s spend --concurrency 4 --no-think --max-tokens 24\nEcho {item}",
            cell_id="batch-spend",
        )
        deadline = time.monotonic() + 30
        while len(chat_bodies(emu, before)) < 12:  # at concurrency 4: at least 8 rows have finished
            assert time.monotonic() < deadline, "the batch did not get going"
            time.sleep(0.02)
        interrupt(kernel, execution, "mid-batch (spend)")
    finally:
        emu.config.tps = 0.0
    session = SESSION.replace("get_session()", "get_session('spend')")
    spent = facts(
        kernel,
        f"(lambda s: {{'usage': s.usage.total_tokens, 'cost': s.cost, 'rows': sum("
        f"r.prompt_tokens + r.completion_tokens for rows in s.batch_state.values() for r in rows.values())}})"
        f"({session})",
    )
    assert spent["rows"] > 0 and spent["usage"] >= spent["rows"], "finished rows are counted in the session"
    assert spent["cost"] > 0


# ------------------------------------------------------------------------------------------------ cache


def cache_cell(kernel: Kernel, folder: str, cell_id: str) -> tuple[float, str]:
    """Point the kernel's cache at ``folder`` and run a cell; its seconds and output."""
    assert kernel.run(f"import os\nos.environ['DEEPSEEK_MAGIC_CACHE_DIR'] = {folder!r}").status == "ok"
    started = time.monotonic()
    execution = kernel.run(f"%%deepseek --no-think -s cache-{cell_id}\nName a prime ({cell_id}).", cell_id=cell_id)
    seconds = time.monotonic() - started
    print(f"cache {cell_id}: the cell took {seconds:.2f} s")
    assert execution.status == "ok", execution.text()
    text = execution.text()
    assert "[emulated]" in text and "Traceback" not in text
    return seconds, text


def test_a_file_in_the_way_of_the_cache(kernel: Kernel, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    seconds, text = cache_cell(kernel, str(blocker), "file-in-the-way")
    assert text.count("reply cache") == 1 and "is off" in text
    assert seconds < CACHE_CELL_LIMIT
    _, again = cache_cell(kernel, str(blocker), "file-in-the-way-again")
    assert "reply cache" not in again, "warned once, not on every cell"


def test_a_read_only_cache_directory(kernel: Kernel, tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        folder = "/sys/deepseek-magic-kernel-cache"  # root ignores modes: a read-only system filesystem
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(0o500)
        folder = str(parent / "cache")
    seconds, text = cache_cell(kernel, folder, "read-only")
    assert "is off" in text and seconds < CACHE_CELL_LIMIT


def test_a_cache_locked_by_another_process(kernel: Kernel, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with lock_held(folder / "replies.sqlite"):
        seconds, text = cache_cell(kernel, str(folder), "locked")
        assert "database is locked" in text
        assert seconds < CACHE_CELL_LIMIT
    after = kernel.run("%%deepseek --no-think -s after-lock\nStill fine?", cell_id="after-lock", timeout=20)
    assert after.status == "ok", after.text()
