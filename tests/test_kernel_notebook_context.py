"""The notebook as context on a real kernel, driven as JupyterLab drives it (execute_request with metadata.cellId).

What the emulator receives for ``%deepseek fix``, the ``set_next_input`` payload of ``fix`` and ``--code`` in the
execute reply (the payload JupyterLab turns into a new cell below), generated code never executed,
``{In[n]}``/``{Out[n]}``/``{Err[n]}``, ``--context`` and the files ``%deepseek export`` writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.history import HistoryManager
from kernel import Execution, Kernel, real_kernel

from deepseek_magic.emulator import EmulatorConfig, Scripted, run_in_thread
from deepseek_magic.features.code_blocks import CODE_INSTRUCTION, main_code_block

KEY = "sk-emulator-kernel-context-7d"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


@pytest.fixture(scope="module")
def kernel(emulator: Any) -> Iterator[Kernel]:
    env = {"DEEPSEEK_BASE_URL": emulator.base_url, "DEEPSEEK_API_KEY": KEY, "DEEPSEEK_MAGIC_NO_AUTOLOAD": "1"}
    with real_kernel(env) as k:
        assert k.run("%load_ext deepseek_magic", cell_id="load").status == "ok"
        yield k


@pytest.fixture(autouse=True)
def _no_leftover_scripts(emulator: Any) -> None:
    emulator.config.scripted.clear()


def ok(kernel: Kernel, code: str, cell_id: str) -> Execution:
    execution = kernel.run(code, cell_id=cell_id)
    assert execution.status == "ok", execution.text()
    return execution


def failed(kernel: Kernel, code: str, cell_id: str) -> Execution:
    execution = kernel.run(code, cell_id=cell_id)
    assert execution.status == "error"
    return execution


def count(execution: Execution) -> int:
    assert execution.reply is not None
    number: int = execution.reply["content"]["execution_count"]
    return number


def next_inputs(execution: Execution) -> list[dict[str, Any]]:
    """The ``set_next_input`` payloads of the execute reply, as a frontend reads them."""
    assert execution.reply is not None
    return [p for p in execution.reply["content"].get("payload", []) if p.get("source") == "set_next_input"]


def last_message(emulator: Any) -> str:
    body = [r.body for r in emulator.requests if r.path.endswith("/chat/completions")][-1]
    content: str = body["messages"][-1]["content"]
    return content


def defined(kernel: Kernel, *names: str) -> dict[str, bool]:
    probe = ok(kernel, f"print(__import__('json').dumps({{n: n in globals() for n in {list(names)!r}}}))", "probe")
    found: dict[str, bool] = json.loads(probe.text().strip().splitlines()[-1])
    return found


def test_fix_sends_the_failing_cell_and_offers_the_fix_as_a_new_cell(kernel: Kernel, emulator: Any) -> None:
    ok(kernel, "units = 0\nprices = [3.5, 2.0]", "setup")
    failing = failed(kernel, "ratio = sum(prices) / units\nprint(ratio)", "failing")
    number = count(failing)
    fix = ok(kernel, "%deepseek fix", "fix-cell")

    message = last_message(emulator)
    assert message.startswith(f"Explain and fix the error raised by this notebook cell (In [{number}]).")
    assert "```python\nratio = sum(prices) / units\nprint(ratio)\n```" in message
    assert f'Traceback (most recent call last):\n  File "Cell In[{number}]", line 1, in <module>' in message
    assert "ZeroDivisionError: float division by zero" in message
    assert "units (int) = 0" in message and "prices (list) = [3.5, 2.0]" in message
    assert "\x1b" not in message and "interactiveshell" not in message and "ipykernel" not in message
    assert message.rstrip().endswith(CODE_INSTRUCTION)
    assert KEY not in message

    payloads = next_inputs(fix)
    assert len(payloads) == 1 and payloads[0]["replace"] is False
    code = payloads[0]["text"]
    assert code.startswith("# [emulated] stand-in fix for ZeroDivisionError") and "except ZeroDivisionError" in code
    assert "The reply's code is in a new cell below (not run)." in fix.text()
    assert "caught: float division by zero" not in fix.text() and defined(kernel, "ratio") == {"ratio": False}


def test_generated_code_is_offered_never_executed(kernel: Kernel, emulator: Any, tmp_path: Path) -> None:
    marker = tmp_path / "generated-ran.txt"
    code = f"open({str(marker)!r}, 'w').write('ran')\nGENERATED_RAN = True"
    failed(kernel, "undefined_name + 1", "nameerror")
    emulator.config.scripted.append(Scripted(content=f"The fix:\n\n```python\n{code}\n```\n"))
    fix = ok(kernel, "%deepseek fix --no-cache", "fix-dangerous")
    emulator.config.scripted.append(Scripted(content=f"Sure:\n\n```python\n{code}\n```\n"))
    cell = ok(kernel, "%%deepseek --code --no-cache\nWrite a file.", "code-dangerous")
    assert [p["text"] for p in next_inputs(fix) + next_inputs(cell)] == [code, code]
    assert last_message(emulator) == f"Write a file.\n\n{CODE_INSTRUCTION}"
    assert not marker.exists() and defined(kernel, "GENERATED_RAN") == {"GENERATED_RAN": False}


def test_code_offers_the_replys_block_and_a_reply_without_one_offers_nothing(kernel: Kernel, emulator: Any) -> None:
    cell = ok(kernel, "%%deepseek --code --no-cache\nWrite a function that doubles a list.", "code-cell")
    payloads = next_inputs(cell)
    reply = ok(kernel, "print(get_ipython().magics_manager.registry['DeepSeekMagics'].last_reply.content)", "read")
    assert len(payloads) == 1 and payloads[0]["replace"] is False
    assert payloads[0]["text"] == main_code_block(reply.text())
    emulator.config.scripted.append(Scripted(content="Only words here."))
    none = ok(kernel, "%%deepseek --code --no-cache\nExplain instead.", "code-none")
    assert next_inputs(none) == [] and "The reply has no Python code block, so no cell was added." in none.text()


def test_in_out_and_err_cite_executions(kernel: Kernel, emulator: Any) -> None:
    source = count(ok(kernel, "answer = 6 * 7", "cite-source"))
    value = count(ok(kernel, "answer", "cite-value"))
    printed = count(ok(kernel, "print('printed', answer)", "cite-printed"))
    error = count(failed(kernel, "answer.missing", "cite-error"))
    ok(kernel, f"%%deepseek --no-cache\nS={{In[{source}]}}|V={{Out[{value}]}}|E={{Err[{error}]}}", "cite")
    source_text, value_text, error_text = last_message(emulator).split("|")
    assert source_text == "S=answer = 6 * 7" and value_text == "V=42"
    assert error_text.startswith(f'E=Traceback (most recent call last):\n  File "Cell In[{error}]", line 1')
    assert error_text.endswith("AttributeError: 'int' object has no attribute 'missing'")
    ok(kernel, "%%deepseek --no-cache\n{Err}", "cite-last")
    assert last_message(emulator) == error_text.removeprefix("E=")
    if hasattr(HistoryManager, "outputs"):  # IPython 9 keeps what a cell printed
        ok(kernel, f"%%deepseek --no-cache\n{{Out[{printed}]}}", "cite-printed-out")
        assert last_message(emulator) == "printed 42"
    missing = failed(kernel, "%%deepseek\n{In[99999]}", "cite-missing")
    assert missing.reply is not None and missing.reply["content"]["ename"] == "UsageError"
    assert re.match(r"\{In\[99999\]\}: there is no execution 99999", missing.reply["content"]["evalue"])


def test_context_sends_the_last_cells_before_the_prompt(kernel: Kernel, emulator: Any) -> None:
    load = count(ok(kernel, "rows = [3, 1, 2]", "ctx-load"))
    ok(kernel, "%%deepseek --no-cache\nan earlier question", "ctx-asked")
    shown = count(ok(kernel, "sorted(rows)", "ctx-shown"))
    broken = count(failed(kernel, "rows.nope()", "ctx-broken"))
    ok(kernel, "%%deepseek --context 3 --no-cache\nWhat went wrong?", "ctx-now")
    block, _, prompt = last_message(emulator).partition("\n\n---\n\n")
    assert prompt == "What went wrong?"
    assert block.startswith("Notebook context: the last 3 cells run before this prompt")
    assert f"In [{load}]:\n```python\nrows = [3, 1, 2]\n```" in block
    assert f"In [{shown}]:\n```python\nsorted(rows)\n```\nOut [{shown}]:\n```text\n[1, 2, 3]\n```" in block
    assert f"Error in [{broken}]:" in block and "AttributeError: 'list' object has no attribute 'nope'" in block
    assert "earlier question" not in block and "What went wrong" not in block


def test_export_writes_the_three_files(kernel: Kernel, emulator: Any, tmp_path: Path) -> None:
    ok(kernel, "%%deepseek --no-cache -s exported\nName a prime.", "export-turn")
    for name in ("chat.md", "chat.ipynb", "chat.json"):
        execution = ok(kernel, f"%deepseek export {tmp_path / name} -s exported", f"export-{name}")
        assert "Session exported (1 turn) exported as" in execution.text()
    markdown = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "## 1 · You\n\nName a prime." in markdown and "[emulated]" in markdown and "<details>" in markdown
    notebook = nbformat.read(tmp_path / "chat.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[1].source.endswith("\nName a prime.") and notebook.cells[1].outputs
    assert json.loads((tmp_path / "chat.json").read_text(encoding="utf-8").splitlines()[0])["turns"] == 1
    again = failed(kernel, f"%deepseek export {tmp_path / 'chat.md'} -s exported", "export-again")
    assert again.reply is not None and again.reply["content"]["ename"] == "UsageError"
    assert "exists; add --force" in again.reply["content"]["evalue"]
    for name in ("chat.md", "chat.ipynb", "chat.json"):
        assert KEY not in (tmp_path / name).read_text(encoding="utf-8")
