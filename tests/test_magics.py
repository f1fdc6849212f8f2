"""%%deepseek and %deepseek in a real IPython shell, against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from pydantic import BaseModel
from shell import TestingShell

from deepseek_magic.batch import BatchNeedsConfirmation
from deepseek_magic.conversation.session import SessionFileError
from deepseek_magic.core.errors import ConfigError, DeepSeekError
from deepseek_magic.ipython.magics import DeepSeekMagics

KEY = "sk-emulator"


def magics(ip: TestingShell) -> DeepSeekMagics:
    found = ip.magics_manager.registry["DeepSeekMagics"]
    assert isinstance(found, DeepSeekMagics)
    return found


def ask(ip: TestingShell, line: str, body: str, *, cell_id: str | None = None) -> str:
    """Run a %%deepseek cell; return what it printed."""
    with capture_output() as captured:
        ip.run_cell(f"%%deepseek {line}\n{body}", cell_id=cell_id)
    return captured.stdout


def last_body(emulator: Any) -> dict[str, Any]:
    chats = [r for r in emulator.requests if r.path.endswith("/chat/completions")]
    body: dict[str, Any] = chats[-1].body
    return body


def chat_count(emulator: Any) -> int:
    return sum(1 for r in emulator.requests if r.path.endswith("/chat/completions"))


# ------------------------------------------------------------------- streaming


def test_a_cell_streams_reasoning_and_answer(ip: TestingShell, emulator: Any) -> None:
    out = ask(ip, "", "What is the capital of France?", cell_id="c1")
    assert "Thinking…" in out and "[emulated]" in out
    assert "tokens" in out and "stop" in out, "the footer shows tokens and the finish reason"
    turn = magics(ip).get_session().turn("cell-c1")
    assert turn is not None and turn.status == "complete" and turn.reply.reasoning
    assert last_body(emulator)["messages"] == [{"role": "user", "content": "What is the capital of France?"}]


def test_every_generation_option_reaches_the_request(ip: TestingShell, emulator: Any) -> None:
    ask(
        ip,
        '-m deepseek-v4-pro --effort max --think -t 0.3 --top-p 0.9 --max-tokens 900 --stop END --stop "##" '
        '--seed 4 --system "Be terse."',
        "Hello",
    )
    body = last_body(emulator)
    assert body["model"] == "deepseek-v4-pro"
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == "max"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.3, 0.9, 900, 4)
    assert body["stop"] == ["END", "##"]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["stream"] is True


def test_no_think_and_no_stream(ip: TestingShell, emulator: Any) -> None:
    out = ask(ip, "--no-think --no-stream", "Hello")
    body = last_body(emulator)
    assert body["thinking"] == {"type": "disabled"} and "stream" not in body
    assert "Thinking" not in out and "[emulated]" in out


def test_out_stores_the_reply_text(ip: TestingShell) -> None:
    ask(ip, "--out answer", "Say hi")
    assert isinstance(ip.user_ns["answer"], str) and "[emulated]" in ip.user_ns["answer"]


# ------------------------------------------------------------ bad options


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus", "unknown option --bogus (%%deepseek? lists the options)"),
        ("--temprature 0.5", "unknown option --temprature; did you mean --temperature?"),
        ("--json --sesion a", "unknown option --sesion; did you mean --session?"),
        ("--no-thnk", "unknown option --no-thnk; did you mean --no-think?"),
        ("-m a -m b", "option -m is given more than once"),
        ("--model a --model=b", "given more than once"),
        ("--effort extreme", "invalid choice"),
        ("-t hot", "invalid float value"),
        ("-t 3", "temperature must be between 0 and 2"),
        ("--max-tokens 0", "max_tokens must be between 1 and 384000"),
        ("--provider nope", "invalid choice"),
        ("--system 'unclosed", "could not read the options"),
        ("--schema Missing", "Missing"),
    ],
)
def test_bad_options_give_one_line_and_send_nothing(ip: TestingShell, emulator: Any, line: str, message: str) -> None:
    before = chat_count(emulator)
    with pytest.raises(UsageError) as info:
        ip.run_cell(f"%%deepseek {line}\nHello")
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()
    assert chat_count(emulator) == before


def test_cell_magic_help_names_the_cell_magic(ip: TestingShell) -> None:
    """``%%deepseek?`` shows the usage of the cell magic, not of a line magic of the same name."""
    doc = ip.magics_manager.magics["cell"]["deepseek"].__doc__
    usage = doc.split("::", 1)[1].strip().splitlines()[0]
    assert usage.startswith("%%deepseek [-m MODEL]"), usage


@pytest.mark.parametrize(
    "line", ["--api-key sk-live-abcdef123456", "--key=sk-live-abcdef123456", "sk-live-abcdef123456"]
)
def test_keys_as_options_are_refused_without_echo(ip: TestingShell, emulator: Any, line: str) -> None:
    before = chat_count(emulator)
    with pytest.raises(UsageError) as info:
        ip.run_cell(f"%%deepseek {line}\nHello")
    assert "sk-live-abcdef123456" not in str(info.value) and "not accepted" in str(info.value)
    assert chat_count(emulator) == before


def test_empty_cell_is_a_usage_error(ip: TestingShell) -> None:
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell("%%deepseek\n   \n")


def test_help_documents_every_option(ip: TestingShell) -> None:
    doc = magics(ip).deepseek.__doc__ or ""
    for option in (
        "--model",
        "--think",
        "--no-think",
        "--effort",
        "--system",
        "--temperature",
        "--top-p",
        "--max-tokens",
        "--stop",
        "--seed",
        "--json",
        "--schema",
        "--out",
        "--session",
        "--new",
        "--tools",
        "--no-stream",
        "--dry-run",
        "--no-cache",
        "--view",
        "--over",
        "--raw",
    ):
        assert option in doc


# ---------------------------------------------------------- sessions and reruns


def test_rerun_replaces_its_turn_and_keeps_later_turns(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "", "first question", cell_id="a")
    ask(ip, "", "second question", cell_id="b")
    ask(ip, "", "first question, rephrased", cell_id="a")
    session = magics(ip).get_session()
    assert [t.key for t in session.turns] == ["cell-a", "cell-b"]
    assert session.turns[0].prompt == "first question, rephrased"
    assert [m["content"] for m in last_body(emulator)["messages"]] == ["first question, rephrased"], (
        "a re-run sees only the turns before it"
    )
    ask(ip, "", "third", cell_id="c")
    sent = last_body(emulator)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in sent if m["role"] == "user"] == [
        "first question, rephrased",
        "second question",
        "third",
    ]
    assert all("reasoning_content" in m for m in sent if m["role"] == "assistant")


def test_same_cell_twice_leaves_one_turn(ip: TestingShell) -> None:
    for _ in range(3):
        ask(ip, "", "again", cell_id="same")
    assert len(magics(ip).get_session().turns) == 1


def test_named_sessions_and_new(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "-s other", "in other", cell_id="x")
    ask(ip, "", "in default", cell_id="y")
    ask(ip, "-s other", "follow up", cell_id="z")
    assert [m["content"] for m in last_body(emulator)["messages"] if m["role"] == "user"] == ["in other", "follow up"]
    ask(ip, "-s other --new", "fresh start", cell_id="w")
    assert [m["content"] for m in last_body(emulator)["messages"]] == ["fresh start"]
    assert [t.key for t in magics(ip).get_session("other").turns] == ["cell-w"]


def test_system_prompt_sticks_for_later_cells(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "--system 'You are a pirate.'", "hello", cell_id="s1")
    ask(ip, "", "and now?", cell_id="s2")
    assert last_body(emulator)["messages"][0] == {"role": "system", "content": "You are a pirate."}


def test_terminal_cells_without_an_id_get_one_turn_each(ip: TestingShell) -> None:
    ask(ip, "", "one")
    ask(ip, "", "two")
    assert len(magics(ip).get_session().turns) == 2


# -------------------------------------------------------------- interpolation


def test_interpolation_through_the_magic(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["city"] = "Lyon"
    ip.user_ns["df"] = pd.DataFrame({"name": ["a", "b"], "score": [1.5, 2.0]})
    ask(ip, "", 'About {city}: {{literal}} {missing} {"json": 1} def f(): return {x: 1}\n{df}')
    content = last_body(emulator)["messages"][-1]["content"]
    assert content.startswith('About Lyon: {literal} {missing} {"json": 1} def f(): return {x: 1}')
    assert "DataFrame: 2 rows × 2 columns" in content and "score" in content


def test_raw_sends_the_cell_as_typed(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["city"] = "Lyon"
    ask(ip, "--raw", "About {city} and {{x}}")
    assert last_body(emulator)["messages"][-1]["content"] == "About {city} and {{x}}"


def test_failing_interpolation_is_a_usage_error(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["df"] = pd.DataFrame({"a": [1]})
    before = chat_count(emulator)
    with pytest.raises(UsageError, match="colums"):
        ip.run_cell("%%deepseek\nLook at {df.colums}")
    assert chat_count(emulator) == before


# ------------------------------------------------------------------ JSON mode


def test_json_mode_parses_into_python(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "--json --out data", "Give the keys name, dtype and note as JSON.")
    assert last_body(emulator)["response_format"] == {"type": "json_object"}
    data = ip.user_ns["data"]
    assert isinstance(data, dict), "one object, not a table"
    assert list(data) == ["name", "dtype", "note"], "the keys the prompt asked for, in its order"
    assert all(isinstance(value, str) and value for value in data.values())
    assert data == json.loads(magics(ip).get_session().turns[-1].reply.content), "the reply's own text, parsed"


def test_json_mode_adds_the_word_json_when_missing(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "--json --out data", "Describe a cat with keys name and colour.")
    messages = last_body(emulator)["messages"]
    assert messages[0]["role"] == "system" and "json" in messages[0]["content"].lower()
    assert messages[1:] == [{"role": "user", "content": "Describe a cat with keys name and colour."}]
    data = ip.user_ns["data"]
    assert isinstance(data, dict) and list(data) == ["name", "colour"]


def test_schema_validates_with_pydantic(ip: TestingShell, emulator: Any) -> None:
    class Pet(BaseModel):
        name: str
        colour: str

    ip.user_ns["Pet"] = Pet
    ask(ip, "--schema Pet --out pet", "Describe a pet with keys name and colour.")
    pet = ip.user_ns["pet"]
    assert isinstance(pet, Pet) and pet.name and pet.colour
    system = last_body(emulator)["messages"][0]
    assert system["role"] == "system"
    # The schema goes to the server written out in the system message (the server cannot know the model).
    written = system["content"].split("JSON schema: ", 1)[1]
    schema, _ = json.JSONDecoder().raw_decode(written)
    assert schema == {
        "title": "Pet",
        "type": "object",
        "properties": {"name": {"type": "string"}, "colour": {"type": "string"}},
        "required": ["name", "colour"],
    }


def test_json_out_turns_a_list_of_records_into_a_dataframe(ip: TestingShell, emulator: Any) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    ip.user_ns["df"] = frame
    ask(
        ip,
        "--json --out summary",
        'Summarise the columns of {df} as JSON: a list "columns" of objects with keys name, dtype.',
    )
    assert last_body(emulator)["response_format"] == {"type": "json_object"}
    summary = ip.user_ns["summary"]
    assert isinstance(summary, pd.DataFrame), f"--json --out gave {type(summary).__name__}, not a DataFrame"
    text_dtype = str(frame.dtypes["b"])  # "str" from pandas 3 on, "object" before
    expected = pd.DataFrame({"name": ["a", "b"], "dtype": ["int64", text_dtype]})
    pd.testing.assert_frame_equal(summary, expected)


# ---------------------------------------------------------------- dry run


def test_dry_run_shows_the_request_with_the_key_masked_and_sends_nothing(ip: TestingShell, emulator: Any) -> None:
    before = chat_count(emulator)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --dry-run --effort high -t 0.5\nHello {{there}}")
    text = "".join(o.data.get("text/plain", "") for o in captured.outputs) + captured.stdout
    assert chat_count(emulator) == before
    assert "Dry run: nothing was sent." in text and '"reasoning_effort": "high"' in text
    assert '"content": "Hello {there}"' in text
    assert KEY not in text
    assert '"Authorization": "Bearer sk-…or"' in text, "the key is shown masked, never whole"


# ------------------------------------------------------------- subcommands


def test_history_reset_sessions_usage(ip: TestingShell) -> None:
    ask(ip, "", "one", cell_id="h1")
    ask(ip, "", "two", cell_id="h2")
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "history")
        ip.run_line_magic("deepseek", "sessions")
        ip.run_line_magic("deepseek", "usage")
    plain = "\n".join(o.data["text/plain"] for o in captured.outputs)
    assert "cell-h1" in plain and "cell-h2" in plain and "complete" in plain
    assert "default" in plain and "total" in plain
    ip.run_line_magic("deepseek", "reset")
    assert magics(ip).get_session().turns == []


def test_models_balance_and_config(ip: TestingShell) -> None:
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "models")
        ip.run_line_magic("deepseek", "balance")
        ip.run_line_magic("deepseek", "config model=deepseek-v4-pro effort=max")
        ip.run_line_magic("deepseek", "config")
    plain = "\n".join(o.data["text/plain"] for o in captured.outputs) + captured.stdout
    assert "deepseek-v4-pro" in plain and "USD" in plain
    assert magics(ip).settings.model == "deepseek-v4-pro" and magics(ip).settings.effort == "max"
    assert KEY not in plain and "api_key_set" in plain


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("config api_key=sk-123456789", UsageError, "not set with %deepseek config"),
        ("config temperature=9", ConfigError, "temperature must be between 0 and 2"),
        ("config nonsense=1", UsageError, "unknown setting"),
        ("frobnicate", UsageError, "unknown subcommand 'frobnicate'; one of: balance, cache, chat"),
        ("setings", UsageError, "unknown subcommand 'setings'; did you mean settings\\?"),
        ("hstory -s x", UsageError, "unknown subcommand 'hstory'; did you mean history\\?"),
        ("load /nonexistent/file.json", SessionFileError, "no session file"),
    ],
)
def test_bad_subcommands_are_one_line_errors(ip: TestingShell, line: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        ip.run_line_magic("deepseek", line)
    assert type(info.value) is error
    assert "sk-123456789" not in str(info.value)
    if isinstance(info.value, DeepSeekError):  # shown by IPython as one line, not a traceback
        assert info.value._render_traceback_() == [f"{error.__name__}: {info.value}"]


def test_config_traits(ip: TestingShell, emulator: Any) -> None:
    ip.run_cell("%config DeepSeekMagics.model = 'deepseek-v4-pro'")
    ip.run_cell("%config DeepSeekMagics.effort = 'low'")
    ask(ip, "", "hello")
    assert last_body(emulator)["model"] == "deepseek-v4-pro" and last_body(emulator)["reasoning_effort"] == "low"
    ask(ip, "-m deepseek-v4-flash", "hello")
    assert last_body(emulator)["model"] == "deepseek-v4-flash", "the cell's option wins over config"


def test_save_and_load(ip: TestingShell, tmp_path: Path, emulator: Any) -> None:
    ask(ip, "", "remember the number 42", cell_id="m1")
    path = tmp_path / "conv.json"
    ip.run_line_magic("deepseek", f"save {path}")
    ip.run_line_magic("deepseek", "reset")
    ip.run_line_magic("deepseek", f"load {path}")
    ask(ip, "", "what number?", cell_id="m2")
    users = [m["content"] for m in last_body(emulator)["messages"] if m["role"] == "user"]
    assert users == ["remember the number 42", "what number?"]
    assert KEY not in path.read_text()


def test_corrupt_session_file_loads_nothing(ip: TestingShell, tmp_path: Path) -> None:
    ask(ip, "", "keep me", cell_id="k")
    path = tmp_path / "bad.json"
    path.write_text('{"version": 1, "turns": [{"key": ')
    with pytest.raises(SessionFileError, match="not a readable session file"):
        ip.run_line_magic("deepseek", f"load {path}")
    assert [t.prompt for t in magics(ip).get_session().turns] == ["keep me"]


# --------------------------------------------------------- display path


def test_display_path_updates_in_place_and_ends_static(ip: TestingShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deepseek_magic.ui.choose.in_kernel", lambda shell: True)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --view text\nExplain recursion briefly.")
    outputs = captured.outputs
    assert len(outputs) >= 2
    final = outputs[-1].data["text/markdown"]
    assert "<details><summary>Thought for" in final and "[emulated]" in final and "tokens" in final
    assert "<details" in outputs[-1].data["text/markdown"] and "prompt" in final


# ------------------------------------------------------------------ tools


def test_tools_option_runs_namespace_functions(ip: TestingShell, emulator: Any) -> None:
    ip.run_cell(
        "def get_weather(city: str) -> dict:\n"
        "    '''Weather for a city.'''\n"
        "    return {'city': city, 'sky': 'clear'}\n"
    )
    before = chat_count(emulator)
    out = ask(ip, "--tools get_weather", "Call get_weather for Lisbon please.")
    assert chat_count(emulator) == before + 2
    assert "get_weather(" in out and "clear" in out, "the trace shows the call and its result"
    assert last_body(emulator)["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(("names", "message"), [("nope", "no 'nope' in the namespace"), ("x", "'x' is not a function")])
def test_tools_option_checks_the_names(ip: TestingShell, emulator: Any, names: str, message: str) -> None:
    ip.user_ns["x"] = 3
    before = chat_count(emulator)
    with pytest.raises(UsageError, match=message):
        ip.run_cell(f"%%deepseek --tools {names}\nHello")
    assert chat_count(emulator) == before


# ------------------------------------------------------------- settings form and chat


def test_settings_form_edits_what_the_cells_read(ip: TestingShell, emulator: Any) -> None:
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "settings")
    assert captured.outputs, "the form is displayed"
    form = magics(ip).last_form
    form.model.value = "deepseek-v4-pro"
    form.set_key("sk-emulator")
    assert form.api_key.value == ""
    ask(ip, "", "hello")
    assert last_body(emulator)["model"] == "deepseek-v4-pro"
    form.cache.value = False
    assert magics(ip).settings.cache is False and magics(ip).cache is False


def test_chat_shares_the_session_with_cells(ip: TestingShell, emulator: Any) -> None:
    with capture_output():
        ip.run_line_magic("deepseek", "chat")
        magics(ip).last_chat.send("Remember the word lighthouse.")
    ask(ip, "", "Which word?", cell_id="after-chat")
    users = [m["content"] for m in last_body(emulator)["messages"] if m["role"] == "user"]
    assert users == ["Remember the word lighthouse.", "Which word?"]


def test_an_interrupt_before_any_output_still_leaves_a_static_interrupted_reply(
    ip: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("deepseek_magic.ui.choose.in_kernel", lambda shell: True)
    monkeypatch.setattr("deepseek_magic.conversation.session.Session.ask", interrupted)
    with capture_output() as captured, pytest.raises(KeyboardInterrupt):
        ip.run_cell("%%deepseek --view text\nHello")
    assert "interrupted" in captured.outputs[-1].data["text/markdown"]


# --------------------------------------------------------- provider features from cells


def test_choices_logprobs_and_user_id_through_a_cell(
    ip: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_PROVIDER", "evolink")
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", f"{emulator.base_url}/evolink/v1")  # DEEPSEEK_BASE_URL is DeepSeek's alone
    monkeypatch.setattr("deepseek_magic.ui.choose.in_kernel", lambda shell: True)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --view text --no-think -n 3 --logprobs 2 --user-id team-a --out taglines\nTaglines?")
    body = last_body(emulator)
    assert body["n"] == 3 and body["top_logprobs"] == 2 and body["user"] == "team-a"
    final = captured.outputs[-1].data["text/markdown"]
    assert "**Choice 3**" in final and "Log-probabilities" in final
    assert isinstance(ip.user_ns["taglines"], list) and len(ip.user_ns["taglines"]) == 3


def test_prefix_completion_uses_the_beta_base(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "--prefix '```python\\n' --stop '```' --out code", "Write a hello world.")
    request = [r for r in emulator.requests if r.path.endswith("/chat/completions")][-1]
    assert request.path == "/beta/chat/completions"
    assert request.body["messages"][-1] == {"role": "assistant", "content": "```python\n", "prefix": True}
    assert ip.user_ns["code"].startswith("```python\n")


def test_strict_tools_use_the_beta_base(ip: TestingShell, emulator: Any) -> None:
    ip.run_cell("def lookup(term: str, limit: int = 3) -> str:\n    '''Look a term up.'''\n    return term\n")
    ask(ip, "--tools lookup --strict --no-think", "Use lookup for the word ocean.")
    requests = [r for r in emulator.requests if r.path.endswith("/chat/completions")]
    assert requests[-1].path == "/beta/chat/completions"
    function = requests[-1].body["tools"][0]["function"]
    assert function["strict"] is True and function["parameters"]["required"] == ["term", "limit"]
    assert function["parameters"]["additionalProperties"] is False


def test_settings_form_keeps_a_live_summary_and_done_leaves_it(ip: TestingShell) -> None:
    """Two outputs: the summary (static, updated on every change) and the live form (marked, hidden by Done)."""
    widget_view = "application/vnd.jupyter.widget-view+json"
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "settings")
        form = magics(ip).last_form
        summary, live = captured.outputs[:2]
        ids = summary.transient["display_id"], live.transient["display_id"]
        assert summary.data["text/plain"].startswith("DeepSeek settings: ") and widget_view not in summary.data
        assert live.metadata == {"deepseek_magic": {"live_widget": True}}
        assert live.data[widget_view]["model_id"] == form.widget.model_id
        assert "VBox" not in live.data["text/plain"] and "DeepSeek settings: " in live.data["text/plain"]
        ip.run_line_magic("deepseek", "config model=deepseek-v4-pro")  # changed elsewhere: the summary follows
        form.set_key("sk-emulator-secret-zz")
        text = form.done()
    assert "key set" in text and "sk-emulator" not in text and "deepseek-v4-pro" in text
    assert all(child.comm is None for child in [form.widget, form.provider, form.done_button])
    updates = [out for out in captured.outputs if out.update]
    latest = {out.transient["display_id"]: out.data for out in updates}
    assert latest[ids[0]]["text/plain"] == text
    assert "deepseek-v4-pro" in updates[0].data["text/plain"], "the summary was updated by %deepseek config"
    assert latest[ids[1]] == {widget_view: {"version_major": 2, "version_minor": 0, "model_id": ""}, "text/plain": ""}
    hidden = next(out for out in reversed(updates) if out.transient["display_id"] == ids[1])
    assert hidden.metadata == {"deepseek_magic": {"live_widget": True}}, "a saved file leaves the hidden form out"
    assert "sk-emulator-secret" not in repr([out.data for out in captured.outputs])


def test_usage_table_escapes_dollars_for_markdown(ip: TestingShell) -> None:
    ask(ip, "", "hello")
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "usage")
    markdown = captured.outputs[-1].data["text/markdown"]
    assert "&#36;" in markdown and " $0" not in markdown


# ------------------------------------------------------------ reply cache and batches


def test_an_identical_rerun_is_answered_from_the_cache(ip: TestingShell, emulator: Any) -> None:
    ask(ip, "", "Cache me if you can.", cell_id="c")
    before = chat_count(emulator)
    out = ask(ip, "", "Cache me if you can.", cell_id="c")
    assert chat_count(emulator) == before, "nothing was sent"
    assert "cached" in out
    turn = magics(ip).get_session().turn("cell-c")
    assert turn is not None and turn.reply.cached and turn.reply.usage is not None and turn.reply.usage.cost == 0.0
    ask(ip, "--no-cache", "Cache me if you can.", cell_id="c")
    assert chat_count(emulator) == before + 1
    with capture_output() as captured:
        ip.run_line_magic("deepseek", "cache")
        ip.run_line_magic("deepseek", "cache clear")
    assert "1 replies" in captured.stdout and "cleared: 1 replies removed" in captured.stdout


def test_over_runs_the_cell_once_per_row(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["cities"] = pd.DataFrame({"city": ["Lyon", "Porto", "Kyoto"]})
    before = chat_count(emulator)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --over cities --out result --no-think\nOne fact about {city}.")
    result = ip.user_ns["result"]
    assert list(result.index) == [0, 1, 2] and result["error"].isna().all()
    assert all("Lyon" in result.loc[0, "reply"] for _ in [0]) and "Kyoto" in result.loc[2, "reply"]
    assert chat_count(emulator) == before + 3
    assert magics(ip).get_session().turns == [], "batch rows do not join the conversation"
    assert "3/3" in captured.stdout


def test_over_a_dask_frame_gives_a_lazy_frame_and_progress_while_it_computes(ip: TestingShell, emulator: Any) -> None:
    dd = pytest.importorskip("dask.dataframe", reason="dask is an optional extra")
    ip.user_ns["cities"] = dd.from_pandas(pd.DataFrame({"city": ["Lyon", "Porto", "Kyoto", "Turku"]}), npartitions=2)
    before = chat_count(emulator)
    with capture_output() as captured:
        ip.run_cell("%%deepseek --over cities --out result --no-think --concurrency 2\nOne fact about {city}.")
        assert chat_count(emulator) == before, "lazy: nothing is sent until it computes"
        result = ip.user_ns["result"].compute(scheduler="threads")
    assert list(result.index) == [0, 1, 2, 3] and result["error"].isna().all()
    assert "Turku" in result.loc[3, "reply"] and chat_count(emulator) == before + 4
    assert "4/4" in captured.stdout


def test_over_asks_for_confirmation_above_the_threshold(ip: TestingShell, emulator: Any) -> None:
    ip.user_ns["rows"] = [{"q": "a"}, {"q": "b"}]
    ip.run_cell("%config DeepSeekMagics.batch_confirm_above = 0.0")
    before = chat_count(emulator)
    with pytest.raises(BatchNeedsConfirmation, match="confirm"):
        ip.run_cell("%%deepseek --over rows --out r\nAnswer {q}")
    assert chat_count(emulator) == before
    ip.run_cell("%%deepseek --over rows --out r --confirm\nAnswer {q}")
    assert len(ip.user_ns["r"]) == 2
    ip.run_cell("%config DeepSeekMagics.batch_confirm_above = 1.0")


def test_widget_view_shows_the_tool_trace_and_leaves_it_in_the_static_output(
    ip: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deepseek_magic.ui.choose.in_kernel", lambda shell: True)
    ip.run_cell("def get_weather(city: str) -> dict:\n    '''Weather.'''\n    return {'city': city, 'sky': 'clear'}\n")
    with capture_output() as captured:
        ip.run_cell("%%deepseek --tools get_weather\nCall get_weather for Oslo.")
    final = captured.outputs[-1].data
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert "✓" in final["text/html"] and "get_weather" in final["text/html"] and "clear" in final["text/html"]


@pytest.mark.parametrize(
    ("provider", "path", "variable"),
    [
        ("anyfast", "/anyfast/v1/chat/completions", "ANYFAST_API_KEY"),
        ("evolink", "/evolink/v1/chat/completions", "EVOLINK_API_KEY"),
        ("runware", "/v1", "RUNWARE_API_KEY"),
    ],
)
def test_provider_option_end_to_end(
    ip: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch, provider: str, path: str, variable: str
) -> None:
    base = emulator.base_url if provider == "runware" else f"{emulator.base_url}/{provider}/v1"
    monkeypatch.setenv(variable, KEY)
    # Each provider's own base-URL variable: a base URL set for DeepSeek does not follow a switch of provider.
    monkeypatch.setenv(variable.replace("_API_KEY", "_BASE_URL"), base)
    out = ask(ip, f"--provider {provider} --out said", "Say hello.")
    requests = [r for r in emulator.requests if r.method == "POST"]
    assert requests[-1].path == path
    assert "[emulated]" in ip.user_ns["said"] and "[emulated]" in out
    assert magics(ip).get_session().turns[-1].provider == provider
