"""Issue #13, in process against the emulator: nothing billed is lost, nothing blank is kept as an answer.

Blank replies are one-line errors kept as partial turns and never cached; a billed tool-call round survives
an interrupt while its tool runs and the cancellation of ``aask``; batch spend reaches ``session.usage``;
rows that ran out of tokens while reasoning are errors; ``async def`` tools are awaited; bad ``--out`` names,
tools without a schema and text that cannot be UTF-8 are one line each, before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from shell import TestingShell

from deepseek_magic import Session, Settings
from deepseek_magic.client.cache import ReplyCache
from deepseek_magic.core.errors import BlankReply, ConfigError, ReplyError
from deepseek_magic.core.events import Reply
from deepseek_magic.emulator import EmulatorConfig, RunningEmulator, run_in_thread
from deepseek_magic.ui.static import ReplyHeader
from deepseek_magic.ui.terminal_view import TerminalView

KEY = "sk-emulator"


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    with run_in_thread(EmulatorConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault_left(emu: RunningEmulator) -> Iterator[None]:
    yield
    emu.config.faults.clear()


def settings(emu: RunningEmulator, **extra: Any) -> Settings:
    return Settings.build(base_url=emu.base_url, api_key=KEY, backoff_base=0.01, **extra)


def sent(emu: RunningEmulator) -> int:
    return sum(1 for request in emu.requests if request.path.endswith("/chat/completions"))


def bodies(emu: RunningEmulator, since: int) -> list[dict[str, Any]]:
    chats = [r for r in emu.requests if r.path.endswith("/chat/completions")]
    return [r.body for r in chats[since:]]


# ------------------------------------------------------------------------------------------ blank replies


@pytest.mark.parametrize("spec", ["done_only=1", "usage_only=1"])
@pytest.mark.parametrize("stream", [True, False])
def test_a_blank_reply_is_an_error_kept_partial_and_never_cached(
    emu: RunningEmulator, tmp_path: Path, spec: str, stream: bool
) -> None:
    session = Session(settings=settings(emu))
    cache = ReplyCache(tmp_path / "replies.sqlite")
    emu.config.faults.append(spec)
    with pytest.raises(BlankReply) as caught:
        session.ask("Name three primes", key="cell", cache=cache, stream=stream)
    assert len(caught.value._render_traceback_()) == 1 and "blank reply" in str(caught.value)
    turn = session.turn("cell")
    assert turn is not None and turn.status == "partial" and turn.reply.content == ""
    assert len(cache) == 0, "a blank is never cached"
    billed = session.usage.total_tokens
    assert (billed > 0) == (spec == "usage_only=1"), "the usage a blank reported is counted, nothing more"
    before = sent(emu)
    reply = session.ask("Name three primes", key="cell", cache=cache, stream=stream)  # the re-run asks again
    assert sent(emu) == before + 1 and reply.content and not reply.cached
    assert session.turn("cell") is not None and session.turn("cell").status == "complete"  # type: ignore[union-attr]
    session.ask("And three squares?", key="next", stream=stream)
    assistants = [m for m in bodies(emu, before + 1)[-1]["messages"] if m["role"] == "assistant"]
    assert [m["content"] for m in assistants] == [reply.content], "no empty assistant message goes out"


def test_json_mode_does_not_ask_a_blank_twice(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    emu.config.faults.append("usage_only=1")
    before = sent(emu)
    with pytest.raises(BlankReply):
        session.ask("Give JSON with three primes", json=True, key="j")
    assert sent(emu) == before + 1


def test_whitespace_json_is_one_error_after_one_request() -> None:
    session = Session(settings=Settings.build())
    exchange = session.exchange("Give JSON", json=True, key="k")
    exchange.next_request()
    exchange.accept(Reply(content="\n \n"))
    assert exchange.next_request() is None
    with pytest.raises(ReplyError, match="blank"):
        exchange.finish()


# ------------------------------------------------------------------------------------------------ batches


def test_batch_rows_that_run_out_while_reasoning_are_errors_and_not_cached(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    session = Session(settings=settings(emu))
    cache = ReplyCache(tmp_path / "replies.sqlite")
    frame = session.batch(["Explain primes", "Explain squares"], "{item}", cache=cache, max_tokens=3, thinking=True)
    assert list(frame["error"]) == [frame["error"].iloc[0]] * 2
    assert "max_tokens reached while reasoning" in str(frame["error"].iloc[0])
    assert frame["reply"].isna().all()
    assert len(cache) == 0
    assert session.usage.completion_tokens == int(frame["completion_tokens"].sum()) > 0, "still billed, still counted"
    before = sent(emu)
    session.batch(["Explain primes"], "{item}", cache=cache, max_tokens=3, thinking=True)
    assert sent(emu) == before + 1, "not answered from the cache"


def test_batch_spend_reaches_the_session_and_usage_command(
    emu: RunningEmulator, testing_shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    ip = testing_shell
    ip.run_line_magic("load_ext", "deepseek_magic")
    try:
        ip.user_ns["rows"] = [f"number {n}" for n in range(6)]
        with capture_output():
            ip.run_cell("%%deepseek --over rows --out result -s spend\nIs {item} prime?")
        frame = ip.user_ns["result"]
        session = ip.magics_manager.registry["DeepSeekMagics"].get_session("spend")
        figures = frame.attrs["batch"]
        assert figures["tokens"] > 0
        assert session.usage.total_tokens == figures["tokens"]
        assert session.cost == pytest.approx(figures["cost"]) and session.cost > 0
        with capture_output() as shown:
            ip.run_line_magic("deepseek", "usage")
        table = shown.stdout + str([o.data for o in shown.outputs])
        assert f"{session.usage.prompt_tokens:,}" in table
        assert "$0.0000" not in table.split("spend", 1)[1].splitlines()[0]
    finally:
        ip.run_line_magic("unload_ext", "deepseek_magic")


# -------------------------------------------------------------------------------------------------- tools


def stop_while_running(city: str) -> str:
    """Pretend the user pressed Interrupt while this tool runs."""
    raise KeyboardInterrupt


def test_an_interrupt_while_a_tool_runs_keeps_the_billed_round(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    with pytest.raises(KeyboardInterrupt):
        session.ask("Call stop_while_running for Paris.", tools=[stop_while_running], key="t")
    turn = session.turn("t")
    assert turn is not None and turn.status == "interrupted"
    assert turn.reply.tool_calls and turn.reply.tool_calls[0].name == "stop_while_running"
    assert turn.reply.usage is not None and session.usage.total_tokens == turn.reply.usage.total_tokens > 0
    nxt = session.ask("Hello again", key="n")
    assert nxt.content
    sent_messages = [m["role"] for m in emu.requests[-1].body["messages"]]
    assert sent_messages == ["user"], "an interrupted turn is never sent as context"


async def async_weather(city: str) -> dict[str, Any]:
    """Weather, from async code."""
    await asyncio.sleep(0.01)
    return {"city": city, "temperature": 19}


def test_async_tools_are_awaited_in_ask(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    before = sent(emu)
    reply = session.ask("Call async_weather for Lima.", tools=[async_weather])
    tool_message = next(m for m in bodies(emu, before)[-1]["messages"] if m["role"] == "tool")
    assert tool_message["content"] == '{"city": "Lima", "temperature": 19}'
    assert "coroutine" not in tool_message["content"] and reply.content


def test_async_tools_are_awaited_in_aask(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    before = sent(emu)
    asyncio.run(session.aask("Call async_weather for Quito.", tools=[async_weather]))
    tool_message = next(m for m in bodies(emu, before)[-1]["messages"] if m["role"] == "tool")
    assert tool_message["content"] == '{"city": "Quito", "temperature": 19}'


async def slow_async_tool(city: str) -> str:
    """Takes a long time."""
    await asyncio.sleep(30)
    return city


def test_cancelling_aask_while_its_tool_runs_keeps_the_billed_round(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))

    async def scenario() -> None:
        task = asyncio.create_task(session.aask("Call slow_async_tool for Rome.", tools=[slow_async_tool], key="a"))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if session.turn("a") is None and sent(emu) and emu.requests[-1].body.get("tools"):
                break
        await asyncio.sleep(0.3)  # the first reply is in and the tool is sleeping
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    turn = session.turn("a")
    assert turn is not None and turn.status == "interrupted"
    assert turn.reply.tool_calls and turn.reply.usage is not None and turn.reply.usage.total_tokens > 0
    assert session.usage.total_tokens == turn.reply.usage.total_tokens


def test_cancelling_aask_mid_stream_keeps_the_partial(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    seen: list[Any] = []

    async def scenario() -> None:
        emu.config.faults.append("trickle=0.05")
        task = asyncio.create_task(session.aask("Name three primes", key="m", on_event=seen.append))
        while len(seen) < 5:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    turn = session.turn("m")
    assert turn is not None and turn.status == "interrupted" and (turn.reply.reasoning or turn.reply.content)


def frame_tool(table: Any, limit: int = 3) -> int:
    """Takes a DataFrame: the model cannot fill that."""
    return limit


def test_a_tool_parameter_without_a_json_schema_is_one_line(emu: RunningEmulator) -> None:
    import pandas as pd

    frame_tool.__annotations__["table"] = pd.DataFrame
    session = Session(settings=settings(emu))
    before = sent(emu)
    with pytest.raises(ConfigError) as caught:
        session.ask("Use it", tools=[frame_tool])
    message = str(caught.value)
    assert "'table'" in message and "DataFrame" in message and "\n" not in message
    assert sent(emu) == before


# ------------------------------------------------------------------------------------------ one-line inputs


@pytest.mark.parametrize(
    "name",
    [
        "__builtins__",
        "_ih",
        "_oh",
        "Out",
        "In",
        "_",
        "__",
        "___",
        "get_ipython",
        "exit",
        "quit",
        "class",
        "a.b",
        "1x",
        "_5",
        "_i3",
    ],
)
def test_out_refuses_names_that_are_not_plain_variables(
    emu: RunningEmulator, testing_shell: TestingShell, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    ip = testing_shell
    ip.run_line_magic("load_ext", "deepseek_magic")
    try:
        before = sent(emu)
        magics = ip.magics_manager.registry["DeepSeekMagics"]
        with pytest.raises(UsageError) as caught:
            magics.deepseek(f"--out {name}", "Name three primes")
        assert "--out" in str(caught.value) and "\n" not in str(caught.value)
        assert sent(emu) == before
        assert isinstance(ip.user_ns["__builtins__"], type(__builtins__)) or hasattr(
            ip.user_ns["__builtins__"], "print"
        )
        magics.deepseek("--out fine_name", "Name three primes")
        assert isinstance(ip.user_ns["fine_name"], str)
    finally:
        ip.run_line_magic("unload_ext", "deepseek_magic")


def test_a_lone_surrogate_is_one_line_saying_where(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    before = sent(emu)
    with pytest.raises(ConfigError) as caught:
        session.ask("café \udce9 au lait")
    message = str(caught.value)
    assert "lone surrogate (U+DCE9) at character 5" in message and "the prompt" in message
    assert len(caught.value._render_traceback_()) == 1
    assert sent(emu) == before
    frame = session.batch(["fine", "bad \ud800"], "{item}")
    assert frame["error"].iloc[0] is None and "lone surrogate" in frame["error"].iloc[1]


def test_rate_limits_are_announced_while_waiting(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    notices: list[str] = []
    emu.config.faults.append("status=429,retry_after=1")
    reply = session.ask("Name three primes", on_retry=notices.append)
    assert reply.content
    assert notices == ["rate limited, retrying in 1 s"]


def test_the_terminal_view_leaves_a_raised_error_to_its_one_line() -> None:
    out = io.StringIO()
    header = ReplyHeader(provider="DeepSeek", model="m", session="s")
    view = TerminalView(header, stream=out)
    view.start()
    view.finish(Reply(error="Rate limited (too many requests at once)"), "error")
    assert "Rate limited" not in out.getvalue(), "IPython prints the exception's line; the view must not repeat it"


def test_a_cell_rate_limited_to_the_end_waits_visibly_and_prints_its_error_once(
    emu: RunningEmulator, testing_shell: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    ip = testing_shell
    ip.run_line_magic("load_ext", "deepseek_magic")
    try:
        with capture_output():
            ip.run_line_magic("deepseek", "config max_retries=1")
        emu.config.faults.extend(["status=429,retry_after=1"] * 2)
        with capture_output() as shown, contextlib.suppress(Exception):  # the testing shell re-raises
            ip.run_cell("%%deepseek -s limited\nName three primes", cell_id="limited")
        text = shown.stdout + shown.stderr
        assert "rate limited, retrying in 1 s" in text
        assert text.count("Rate limited (too many requests at once)") == 1, text
        assert "Traceback" not in text
    finally:
        emu.config.faults.clear()
        ip.run_line_magic("unload_ext", "deepseek_magic")


def quick_lookup(term: str) -> str:
    """Look a term up."""
    return f"{term}: found"


def test_an_interrupt_in_a_later_round_of_a_tool_loop_keeps_every_billed_round(emu: RunningEmulator) -> None:
    session = Session(settings=settings(emu))
    before = sent(emu)

    def stop_in_second_round(event: Any) -> None:
        if sent(emu) - before >= 2:
            raise KeyboardInterrupt  # the user interrupts while the round after the tool streams

    with pytest.raises(KeyboardInterrupt):
        session.ask(
            "Please call quick_lookup with term harbour.",
            tools=[quick_lookup],
            key="loop",
            on_event=stop_in_second_round,
        )
    assert sent(emu) - before == 2
    first_round = bodies(emu, before)[1]["messages"]
    assert any(m["role"] == "tool" for m in first_round), "the tool ran and its result went out"
    turn = session.turn("loop")
    assert turn is not None and turn.status == "interrupted"
    assert turn.reply.usage is not None and turn.reply.usage.total_tokens > 0, "the first round's usage is kept"
    assert session.usage.total_tokens == turn.reply.usage.total_tokens
