"""notebooks/quickstart.ipynb executes in a real kernel against the emulator; the saved outputs are right."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from demo_notebooks import NOTEBOOK_DIR, pristine_copy
from kernel import send_execute_request
from nbclient import NotebookClient

from deepseek_magic.emulator import EmulatorConfig, run_in_thread

CANARY = "sk-canary-quickstart-7c1e9a2b4d"


class LabLikeClient(NotebookClient):
    """Sends each cell's id the way JupyterLab does (``metadata.cellId`` of the
    execute_request); plain nbclient leaves it out."""

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        kc = self.kc
        assert kc is not None
        original = kc.execute

        def execute(code: str, **options: Any) -> str:
            return send_execute_request(kc, code, cell.id, **options)

        kc.execute = execute  # type: ignore[method-assign]
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            kc.execute = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    with run_in_thread(EmulatorConfig(api_key=CANARY)) as emu, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
        patch.setenv("DEEPSEEK_API_KEY", CANARY)
        patch.setenv("DEEPSEEK_MAGIC_NO_AUTOLOAD", "1")
        folder = tmp_path_factory.mktemp("nb")
        out = pristine_copy(NOTEBOOK_DIR / "quickstart.ipynb", folder)
        nb = nbformat.read(out, as_version=4)
        LabLikeClient(nb, timeout=180, kernel_name="python3", store_widget_state=True).execute(cwd=str(folder))
        nbformat.write(nb, out)
        yield nb, out.read_text(encoding="utf-8")


def cell_with(nb: Any, text: str) -> Any:
    return next(cell for cell in nb.cells if cell.cell_type == "code" and text in cell.source)


def markdown_of(cell: Any) -> str:
    return "\n".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)


@pytest.mark.slow
def test_no_cell_failed_but_the_one_that_fails_on_purpose(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    errors = [
        (c.metadata.get("tags", []), o.ename)
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == [(["raises-exception"], "ZeroDivisionError")]


def test_fix_explains_the_failing_cell_and_code_goes_to_a_new_cell(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    fix = cell_with(nb, "%deepseek fix")
    shown = "\n".join(o.get("data", {}).get("text/plain", "") for o in fix.outputs)
    assert "[emulated]" in shown and "ZeroDivisionError: integer division or modulo by zero" in shown
    assert "stand-in fix" in shown and "big_coastal" in shown, "the reply quotes the failing cell in its code block"
    printed = "".join(o.get("text", "") for o in fix.outputs if o.output_type == "stream")
    assert "The reply's code is in a new cell below (not run)." in printed
    code = cell_with(nb, "%%deepseek --code --context 2")
    assert "# [emulated] code for:" in "\n".join(o.get("data", {}).get("text/plain", "") for o in code.outputs)
    assert "The reply's code is in a new cell below (not run)." in "".join(
        o.get("text", "") for o in code.outputs if o.output_type == "stream"
    )


def test_replies_are_saved_as_static_markdown_with_folded_reasoning(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    first = markdown_of(cell_with(nb, "What are three good ways"))
    assert "<details><summary>Thought for" in first and "[emulated]" in first
    assert "tokens" in first and "stop" in first
    assert "*…*" not in first, "the final bundle replaced the live one"
    assert len(cell_with(nb, "What are three good ways").outputs) == 1, "one output, updated in place"


def test_follow_up_rerun_history_and_thinking_off(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    history = "".join(o["data"]["text/plain"] for o in cell_with(nb, "%deepseek history").outputs)
    assert history.count("complete") == 2, "two questions so far, one turn each"
    assert "cell-" in history, "turns are keyed by the notebook's cell ids"
    no_think = markdown_of(cell_with(nb, "--no-think"))
    assert "<details>" not in no_think and "[emulated]" in no_think


def test_json_mode_gives_a_dataframe(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    shown = next(c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "summary")
    html = shown.outputs[0]["data"].get("text/html", "")
    assert "<table" in html and "dtype" in html and "population" in html


def test_the_key_is_nowhere_in_the_saved_notebook(executed: tuple[Any, str]) -> None:
    _, text = executed
    assert CANARY not in text


def test_loading_the_extension_prints_nothing(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    assert cell_with(nb, "_ext deepseek_magic").outputs == [], "no 'already loaded' or any other line"


def test_settings_and_chat_leave_static_outputs_besides_their_widgets(executed: tuple[Any, str]) -> None:
    """What GitHub and nbconvert show: the settings summary and the chat transcript, and readable twins."""
    nb, _ = executed
    widget_view = "application/vnd.jupyter.widget-view+json"
    for source, static_start in (("%deepseek settings", "DeepSeek settings: "), ("%deepseek chat", "DeepSeek chat ·")):
        outputs = cell_with(nb, source).outputs
        kept, live = outputs
        assert kept["data"]["text/plain"].startswith(static_start) and widget_view not in kept["data"]
        assert "text/html" in kept["data"]
        assert live["metadata"] == {"deepseek_magic": {"live_widget": True}}
        assert "VBox(" not in live["data"]["text/plain"] and "text/html" in live["data"]


def test_batch_classification_gives_labels_that_follow_the_reviews(executed: tuple[Any, str]) -> None:
    nb, _ = executed
    progress = cell_with(nb, "--over reviews").outputs
    assert [set(o["data"]) for o in progress] == [{"text/plain", "text/html", "text/markdown"}], "a static line"
    assert "3/3 rows" in progress[0]["data"]["text/plain"]
    table = cell_with(nb, "reviews.join").outputs[0]["data"]["text/plain"]
    rows = table.splitlines()[1:]
    assert [row.split()[-2] for row in rows] == ["mixed", "positive", "negative"], table
