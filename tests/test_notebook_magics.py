"""The notebook as context, in a real IPython shell against the emulator: {In[n]}/{Out[n]}/{Err[n]}, --context,
--code, %deepseek fix and %deepseek export.

Cells run with ``store_history=True`` (as a kernel runs them), so they get execution numbers and the
extension records them from ``post_run_cell``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.history import HistoryManager
from IPython.utils.capture import capture_output
from shell import TestingShell, loaded_magics

from deepseek_magic.core.errors import ConfigError
from deepseek_magic.core.files import FileKindError
from deepseek_magic.emulator import EmulatorConfig, Scripted, run_in_thread
from deepseek_magic.features.code_blocks import CODE_INSTRUCTION, main_code_block
from deepseek_magic.ipython.magics import DeepSeekMagics
from deepseek_magic.ipython.notebook_cells import NO_CODE, OFFERED

KEY = "sk-emulator-notebook-context-1f"
#: IPython 9 records printed output per execution; older IPython keeps only ``Out`` values.
RECORDS_PRINTS = hasattr(HistoryManager, "outputs")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as emu:
        yield emu


@pytest.fixture
def ip(testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    emulator.config.scripted.clear()
    with loaded_magics(testing_shell, emulator.base_url, KEY, monkeypatch) as shell:
        yield shell


@pytest.fixture
def offered(ip: TestingShell, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every ``set_next_input(text, replace)`` the extension makes."""
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: calls.append((text, replace)))
    return calls


def magics(ip: TestingShell) -> DeepSeekMagics:
    found = ip.magics_manager.registry["DeepSeekMagics"]
    assert isinstance(found, DeepSeekMagics)
    return found


def run(ip: TestingShell, code: str, cell_id: str | None = None) -> tuple[int, str]:
    """Run ``code`` as a kernel would (stored in history); its execution number and what it printed."""
    number = ip.execution_count
    with capture_output() as captured:
        ip.run_cell(code, store_history=True, cell_id=cell_id)
    return number, captured.stdout


def fails(
    ip: TestingShell, code: str, error: type[BaseException], match: str | None = None, cell_id: str | None = None
) -> int:
    """Run ``code``, which must raise ``error``; its execution number."""
    number = ip.execution_count
    with capture_output(), pytest.raises(error, match=match):
        ip.run_cell(code, store_history=True, cell_id=cell_id)
    return number


def chats(emulator: Any) -> list[dict[str, Any]]:
    return [r.body for r in emulator.requests if r.path.endswith("/chat/completions")]


def sent(emulator: Any) -> str:
    """The last user message the emulator received."""
    content: str = chats(emulator)[-1]["messages"][-1]["content"]
    return content


# ------------------------------------------------------------ {In[n]} {Out[n]} {Err[n]} {Err}


def test_cells_are_cited_by_execution_number(ip: TestingShell, emulator: Any) -> None:
    source, _ = run(ip, "answer = 6 * 7")
    value, _ = run(ip, "answer")
    printed, _ = run(ip, "print('printed', answer)")
    failed = fails(ip, "answer / 0", ZeroDivisionError)
    run(ip, "%%deepseek --no-cache\n" + f"S={{In[{source}]}} V={{Out[{value}]}} E={{Err[{failed}]}} LAST={{Err}}")
    message = sent(emulator)
    cited = f'S=answer = 6 * 7 V=42 E=Traceback (most recent call last):\n  File "Cell In[{failed}]", line 1'
    assert cited in message
    assert message.count("ZeroDivisionError: division by zero") == 2, "{Err[n]} and {Err} are the same error"
    assert "\x1b" not in message, "plain text, no colour codes"
    if RECORDS_PRINTS:
        run(ip, f"%%deepseek --no-cache\nP={{Out[{printed}]}}")
        assert sent(emulator) == "P=printed 42"


def test_in_is_the_source_as_typed_not_ipythons_transformed_code(ip: TestingShell, emulator: Any) -> None:
    number, _ = run(ip, "%%capture\nprint('hidden')")
    run(ip, f"%%deepseek --no-cache\n{{In[{number}]}}")
    assert sent(emulator) == "%%capture\nprint('hidden')"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("{In[99999]}", r"\{In\[99999\]\}: there is no execution 99999 \(the last one is \d+\)"),
        ("{Out[QUIET]}", r"\{Out\[QUIET\]\}: execution QUIET has no output"),
        ("{Err[QUIET]}", r"\{Err\[QUIET\]\}: execution QUIET raised no error \(no cell has raised an error\)"),
        ("{Err}", r"\{Err\}: no cell has raised an error since the extension was loaded"),
        ("{In}", r"\{In\}: name an execution, e\.g\. \{In\[3\]\}"),
        ("{Err[0]}", r"Err\[0\]: execution numbers start at 1"),
        ("{In[-1]}", r"In\[-1\]: execution numbers start at 1"),
        ("{Out['x']}", r"Out\[…\] takes an execution number"),
    ],
)
def test_a_reference_to_nothing_is_one_line_and_nothing_is_sent(
    ip: TestingShell, emulator: Any, reference: str, message: str
) -> None:
    magics(ip).recorder.history.clear()
    quiet, _ = run(ip, "quiet = 1")  # a cell that printed and returned nothing, and raised nothing
    magics(ip).recorder.history.clear()
    reference, message = reference.replace("QUIET", str(quiet)), message.replace("QUIET", str(quiet))
    before = len(chats(emulator))
    fails(ip, f"%%deepseek\nLook at {reference}", UsageError, match=message)
    assert len(chats(emulator)) == before


def test_the_error_hint_names_the_executions_that_failed(ip: TestingShell) -> None:
    first = fails(ip, "1/0", ZeroDivisionError)
    clean, _ = run(ip, "x = 1")
    fails(ip, f"%%deepseek\n{{Err[{clean}]}}", UsageError, match=rf"raised no error \(errors were raised by {first}\)")


def test_brace_rules_hold_and_a_users_own_err_wins(ip: TestingShell, emulator: Any) -> None:
    fails(ip, "1/0", ZeroDivisionError)
    run(ip, '%%deepseek --no-cache\n{{Err}} {"Err": 1} { Err } {{In[1]}}', cell_id="braces")
    assert sent(emulator).startswith('{Err} {"Err": 1} { Err } ')
    assert sent(emulator).endswith(" {In[1]}")
    run(ip, "Err = 'my own variable'")
    run(ip, "%%deepseek --no-cache\n{Err}")
    assert sent(emulator) == "my own variable"


def test_recording_never_disturbs_a_cell(ip: TestingShell) -> None:
    class Hostile:
        @property
        def info(self) -> Any:
            raise RuntimeError("no")

    class Odd:
        execution_count = 5
        info = type("Info", (), {"store_history": True, "raw_cell": None, "cell_id": None})()
        error_in_exec = None
        error_before_exec = None

    recorder = magics(ip).recorder
    recorder.history.clear()
    recorder.record(Hostile())
    recorder.record(object())
    recorder.record(Odd())
    assert [(run.count, run.source) for run in recorder.history] == [(5, "")]
    run(ip, "y = 2", cell_id="after")
    assert len(recorder.history) == 2


def test_silent_runs_and_runs_outside_history_are_not_recorded(ip: TestingShell) -> None:
    recorder = magics(ip).recorder
    recorder.history.clear()
    with capture_output():
        ip.run_cell("1/0 if False else 3", store_history=False)
        ip.run_cell("4", store_history=True, silent=True)
    assert len(recorder.history) == 0


def test_the_extensions_own_errors_are_not_recorded(ip: TestingShell) -> None:
    fails(ip, "%%deepseek --temperature 9\nhi", UsageError)
    fails(ip, "%deepseek nonsense", UsageError)
    assert magics(ip).recorder.history.last_error() is None
    fails(ip, "%deepseek fix", UsageError, match="nothing to fix: no cell has raised an error")


# --------------------------------------------------------------------------- fix


def test_fix_sends_the_cell_its_traceback_and_its_variables_and_offers_the_code(
    ip: TestingShell, emulator: Any, offered: list[tuple[str, bool]]
) -> None:
    run(ip, "import pandas as pd\nsales = pd.DataFrame({'price': [3.5, 2.0], 'qty': [2, 0]})\nunits = 0")
    cell = "ratio = float(sales['price'].sum()) / units\nprint(ratio)"
    failed = fails(ip, cell, ZeroDivisionError, cell_id="failing")
    before = dict(ip.user_ns)
    _, printed = run(ip, "%deepseek fix", cell_id="fix-cell")

    message = sent(emulator)
    assert message.startswith(f"Explain and fix the error raised by this notebook cell (In [{failed}]).")
    assert f"```python\n{cell}\n```" in message
    assert "Traceback (most recent call last):" in message and f'"Cell In[{failed}]", line 1' in message
    assert "interactiveshell.py" not in message, "IPython's own frames are left out"
    assert "sales (DataFrame) = DataFrame: 2 rows × 2 columns" in message and "units (int) = 0" in message
    assert "pd (" not in message, "modules are not described"
    assert message.rstrip().endswith(CODE_INSTRUCTION)

    reply = magics(ip).last_reply
    assert reply is not None and "[emulated]" in reply.content
    code = main_code_block(reply.content)
    assert code is not None and "except ZeroDivisionError as error:" in code
    assert offered == [(code, False)], "one new cell below, never replacing the fix cell"
    assert OFFERED in printed and "caught: division by zero" not in printed, "offered, not run"
    added = {name for name in ip.user_ns.keys() - before.keys() if not name.startswith("_")}
    assert added == set() and "ratio" not in ip.user_ns, "nothing the reply wrote ran"
    turn = magics(ip).get_session().turn("cell-fix-cell")
    assert turn is not None and turn.status == "complete", "the fix is a turn of the session like any cell"


def test_generated_code_is_never_run(ip: TestingShell, emulator: Any, tmp_path: Path, offered: list[Any]) -> None:
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('ran')\nGENERATED_RAN = True"
    fails(ip, "undefined_name + 1", NameError)
    emulator.config.scripted.append(Scripted(content=f"Here:\n\n```python\n{code}\n```\n"))
    run(ip, "%deepseek fix")
    emulator.config.scripted.append(Scripted(content=f"Again:\n\n```python\n{code}\n```\n"))
    run(ip, "%%deepseek --code\nWrite the file.")
    assert offered == [(code, False), (code, False)]
    assert not marker.exists() and "GENERATED_RAN" not in ip.user_ns


def test_fix_n_picks_that_execution_and_rerunning_fix_replaces_its_turn(
    ip: TestingShell, emulator: Any, offered: list[Any]
) -> None:
    first = fails(ip, "int('x')", ValueError)
    fails(ip, "[][3]", IndexError)
    run(ip, f"%deepseek fix {first}", cell_id="fixer")
    assert f"(In [{first}])" in sent(emulator) and "ValueError: invalid literal" in sent(emulator)
    run(ip, f"%deepseek fix [{first}] --no-cache", cell_id="fixer")
    run(ip, "%deepseek fix --no-cache", cell_id="fixer")
    assert "IndexError: list index out of range" in sent(emulator), "without N: the latest error"
    assert [turn.key for turn in magics(ip).get_session().turns] == ["cell-fixer"]


def test_fix_refuses_in_one_line_and_sends_nothing(ip: TestingShell, emulator: Any, offered: list[Any]) -> None:
    clean, _ = run(ip, "x = 1")
    failed = fails(ip, "x.nope", AttributeError)
    before = len(chats(emulator))
    fails(ip, f"%deepseek fix {clean}", UsageError, match=rf"execution {clean}: it raised no error .*by {failed}\)")
    fails(ip, "%deepseek fix 999999", UsageError, match="nothing to fix in execution 999999")
    fails(ip, "%deepseek fix abc", UsageError, match="fix takes an execution number")
    fails(ip, "%deepseek fix --json", UsageError, match="fix cannot be combined with --json")
    fails(ip, "%deepseek fix --over df", UsageError, match="fix cannot be combined with --over")
    fails(ip, "%deepseek fix --temperature 5", UsageError, match="temperature")
    fails(ip, "%deepseek fix --api-key sk-abcdefgh123", UsageError, match="API keys are not accepted")
    assert len(chats(emulator)) == before and offered == []


def test_fix_takes_cell_options_and_a_dry_run_sends_and_offers_nothing(
    ip: TestingShell, emulator: Any, offered: list[Any]
) -> None:
    fails(ip, "{}['k']", KeyError)
    before = len(chats(emulator))
    with capture_output() as captured:
        ip.run_cell("%deepseek fix --dry-run", store_history=True)
    shown = "".join(out.data.get("text/plain", "") for out in captured.outputs)
    assert "Dry run: nothing was sent." in shown and "Explain and fix" in shown and "KeyError" in shown
    assert len(chats(emulator)) == before and offered == []
    run(ip, "%deepseek fix -m deepseek-v4-pro --no-think --no-cache")
    body = chats(emulator)[-1]
    assert body["model"] == "deepseek-v4-pro" and body["thinking"] == {"type": "disabled"}


# -------------------------------------------------------------------------- --code


def test_code_asks_for_a_block_and_offers_it(ip: TestingShell, emulator: Any, offered: list[Any]) -> None:
    _, printed = run(ip, "%%deepseek --code --no-cache\nWrite a function that doubles a list.")
    message = sent(emulator)
    assert message == f"Write a function that doubles a list.\n\n{CODE_INSTRUCTION}"
    reply = magics(ip).last_reply
    assert reply is not None
    assert offered == [(main_code_block(reply.content), False)] and "# [emulated] code for:" in offered[0][0]
    assert OFFERED in printed


def test_a_reply_without_code_is_a_note_not_an_error(ip: TestingShell, emulator: Any, offered: list[Any]) -> None:
    emulator.config.scripted.append(Scripted(content="I would rather explain it in words. ```bash\nls\n```"))
    _, printed = run(ip, "%%deepseek --code\nExplain.")
    assert NO_CODE in printed and offered == []


def test_code_refuses_json_and_the_dry_run_offers_nothing(ip: TestingShell, emulator: Any, offered: list[Any]) -> None:
    fails(ip, "%%deepseek --code --json\nlist", UsageError, match="cannot be combined with --json")
    ip.user_ns["rows"] = [{"a": 1}]
    fails(ip, "%%deepseek --code --over rows\n{a}", UsageError, match="--over cannot be combined")
    with capture_output() as captured:
        ip.run_cell("%%deepseek --code --dry-run\nWrite code.", store_history=True)
    assert CODE_INSTRUCTION in "".join(out.data.get("text/plain", "") for out in captured.outputs)
    assert offered == []


# ----------------------------------------------------------------------- --context


def test_context_sends_the_last_cells_before_the_prompt(ip: TestingShell, emulator: Any) -> None:
    load, _ = run(ip, "numbers = [3, 1, 2]", cell_id="load")
    run(ip, "%%deepseek --no-cache\nan earlier question", cell_id="asked")
    shown, _ = run(ip, "sorted(numbers)", cell_id="shown")
    failed = fails(ip, "numbers.nope()", AttributeError, cell_id="failed")
    run(ip, "%%deepseek --context 3 --no-cache\nWhat happened?", cell_id="now")
    message = sent(emulator)
    block, rule, prompt = message.partition("\n\n---\n\n")
    assert rule and prompt == "What happened?"
    assert block.startswith("Notebook context: the last 3 cells run before this prompt")
    assert f"In [{load}]:\n```python\nnumbers = [3, 1, 2]\n```" in block
    assert f"In [{shown}]:\n```python\nsorted(numbers)\n```\nOut [{shown}]:\n```text\n[1, 2, 3]\n```" in block
    assert f"Error in [{failed}]:" in block and "AttributeError: 'list' object has no attribute 'nope'" in block
    assert "earlier question" not in block and "What happened?" not in block, "no deepseek cell, not this cell"


def test_the_context_default_is_one_setting(ip: TestingShell, emulator: Any) -> None:
    run(ip, "alpha = 1", cell_id="a")
    run(ip, "beta = 2", cell_id="b")
    run(ip, "%deepseek config context=1")
    assert magics(ip).settings.context == 1 and magics(ip).context == 1, "the trait follows the Settings"
    run(ip, "%%deepseek --no-cache\nQ1")
    assert "beta = 2" in sent(emulator) and "alpha = 1" not in sent(emulator)
    run(ip, "%%deepseek --context 0 --no-cache\nQ2")
    assert sent(emulator) == "Q2", "--context 0 turns it off for one cell"
    run(ip, "%config DeepSeekMagics.context = 2")
    assert magics(ip).settings.context == 2
    with capture_output():
        ip.run_line_magic("deepseek", "settings")
    form = magics(ip).last_form
    assert form.context.value == 2, "the form shows the same value"
    form.context.value = 0
    assert magics(ip).settings.context == 0 and magics(ip).context == 0
    fails(ip, "%deepseek config context=500", ConfigError, match="context: Input should be less than or equal to 100")
    fails(ip, "%%deepseek --context 101\nQ", UsageError, match="--context takes 0 to 100 cells, not 101")


def test_the_budget_trait_bounds_the_block(ip: TestingShell, emulator: Any) -> None:
    numbers = " ".join(str(n * 7919 % 10007) for n in range(150))  # ~300 tokens: no run of one letter to compress
    for index in range(6):
        run(ip, f"value_{index} = '{numbers}'", cell_id=f"v{index}")
    run(ip, "%config DeepSeekMagics.context_tokens = 700")
    run(ip, "%%deepseek --context 6 --no-cache\nQ")
    block = sent(emulator).partition("\n\n---\n\n")[0]
    assert "value_5" in block and "value_0" not in block and "left out (token budget)" in block


def test_the_api_key_is_masked_in_everything_the_notebook_sends(
    ip: TestingShell, emulator: Any, offered: list[Any]
) -> None:
    run(ip, f"import os\nos.environ['DEEPSEEK_API_KEY'] = {KEY!r}\nkey_copy = {KEY!r}", cell_id="leaky")
    number = fails(ip, f"raise ValueError('bad key ' + {KEY!r})", ValueError)
    run(ip, f"%%deepseek --context 2 --no-cache\nSee {{In[{number}]}} {{Err}} {{key_copy}}")
    run(ip, "%deepseek fix --no-cache")
    for body in chats(emulator)[-2:]:
        text = json.dumps(body, ensure_ascii=False)
        assert KEY not in text and "sk-…1f" in text


# -------------------------------------------------------------------------- export


@pytest.fixture
def conversation(ip: TestingShell, emulator: Any) -> DeepSeekMagics:
    """A session with a reasoning turn, a tool-call turn and a turn whose reply carries markup."""
    run(ip, "%%deepseek --no-cache\nWhat is a DataFrame?", cell_id="one")
    run(ip, "def get_weather(city: str) -> dict:\n    '''Weather for a city.'''\n    return {'sky': 'clear'}")
    run(ip, "%%deepseek --tools get_weather --no-cache\nCall get_weather for Lisbon please.", cell_id="two")
    emulator.config.scripted.append(
        Scripted(content="<img src=x onerror=alert(1)> **bold**\n\n```python\nx = 1\n```", reasoning="a <b>thought</b>")
    )
    run(ip, "%%deepseek --no-cache\nShow markup.", cell_id="three")
    return magics(ip)


def test_export_markdown(ip: TestingShell, conversation: DeepSeekMagics, tmp_path: Path) -> None:
    path = tmp_path / "chat.md"
    _, printed = run(ip, f"%deepseek export {path}")
    assert f"Session default (3 turns) exported as Markdown to {path}" in printed
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# DeepSeek conversation: session default\n\n3 turns · ")
    assert "## 1 · You\n\nWhat is a DataFrame?" in text and "## 1 · DeepSeek · deepseek-flash" in text
    assert "<details><summary>Reasoning · " in text and "</details>" in text
    assert "**Tool call** `get_weather`" in text and '"city": "Lisbon"' in text and '{"sky": "clear"}' in text
    assert "a &lt;b&gt;thought&lt;/b&gt;" in text, "reasoning is escaped inside <details>"
    assert "```python\nx = 1\n```" in text, "replies are written as the Markdown they are"
    assert text.count(" completion ") >= 4 and "$" in text, "usage per turn and in total"
    assert KEY not in text
    assert os.stat(path).st_mode & 0o077 == 0, "a new file is private"


def test_export_notebook(ip: TestingShell, conversation: DeepSeekMagics, tmp_path: Path) -> None:
    path = tmp_path / "chat.ipynb"
    run(ip, f"%deepseek export {path}")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.source.split("\n", 1)[1] for cell in code] == [
        "What is a DataFrame?",
        "Call get_weather for Lisbon please.",
        "Show markup.",
    ]
    assert all(cell.source.startswith("%%deepseek --raw -m deepseek-flash\n") for cell in code)
    tool_output = code[1].outputs[0]["data"]
    assert "get_weather" in tool_output["text/plain"] and "clear" in tool_output["text/plain"]
    markup = code[2].outputs[-1]["data"]
    assert {"text/html", "text/markdown", "text/plain"} <= set(markup)
    assert "<img" not in markup["text/html"] and "<img" not in markup["text/markdown"], "no model markup"
    assert "<strong>bold</strong>" in markup["text/html"]
    assert "<b>thought</b>" not in markup["text/html"] and "<b>thought</b>" not in markup["text/markdown"]
    assert KEY not in path.read_text(encoding="utf-8")


def test_export_json_is_the_session_file(ip: TestingShell, conversation: DeepSeekMagics, tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    run(ip, f"%deepseek export {path} -s default")
    run(ip, f"%deepseek load {path} -s reloaded")
    reloaded = magics(ip).sessions["reloaded"]
    original = magics(ip).get_session()
    assert [t.prompt for t in reloaded.turns] == [t.prompt for t in original.turns]
    assert [t.reply.content for t in reloaded.turns] == [t.reply.content for t in original.turns]


def test_export_never_overwrites_without_force_and_never_follows_a_link(
    ip: TestingShell, conversation: DeepSeekMagics, tmp_path: Path
) -> None:
    existing = tmp_path / "notes.md"
    existing.write_text("my notes", encoding="utf-8")
    fails(ip, f"%deepseek export {existing}", UsageError, match="exists; add --force to replace it")
    assert existing.read_text(encoding="utf-8") == "my notes"
    existing.chmod(0o644)
    run(ip, f"%deepseek export {existing} --force")
    assert existing.read_text(encoding="utf-8").startswith("# DeepSeek conversation")
    assert existing.stat().st_mode & 0o777 == 0o644, "a replaced file keeps its mode"

    target = tmp_path / "target.md"
    target.write_text("keep me", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    for line in (f"export {link}", f"export {link} --force"):
        with capture_output(), pytest.raises(FileKindError, match="symbolic link"):
            ip.run_line_magic("deepseek", line)
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "nowhere.md")
    with capture_output(), pytest.raises(FileKindError, match="symbolic link"):
        ip.run_line_magic("deepseek", f"export {dangling} --force")
    assert target.read_text(encoding="utf-8") == "keep me" and link.is_symlink()
    assert not (tmp_path / "nowhere.md").exists()
    folder = tmp_path / "folder.md"
    folder.mkdir()
    with capture_output(), pytest.raises(FileKindError, match="a directory"):
        ip.run_line_magic("deepseek", f"export {folder} --force")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("export notes.txt", "export writes .md, .ipynb or .json files, not '.txt'"),
        ("export notes", "not a path without a suffix"),
        ("export", "export takes one PATH"),
        ("export a.md b.md", "export takes one PATH"),
        ("export a.md -s", "-s needs a session name"),
        ("export /no/such/folder/a.md", "could not export to /no/such/folder/a.md"),
    ],
)
def test_export_refusals_are_one_line(ip: TestingShell, line: str, message: str) -> None:
    with capture_output(), pytest.raises(UsageError, match=message):
        ip.run_line_magic("deepseek", line)


# ---------------------------------------------------------------------------- help


def test_help_documents_the_new_subcommands_and_options(ip: TestingShell) -> None:
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "help")
    plain = "".join(out.data.get("text/plain", "") for out in captured.outputs)
    for text in ("%deepseek export PATH", "%deepseek fix [N]", "{Err[n]}", "--context N", "--code"):
        assert text in plain
    doc = magics(ip).deepseek.__doc__ or ""
    assert "--code" in doc and "--context N" in doc
