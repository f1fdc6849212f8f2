"""The fault matrix: every emulator fault × every entry point, each cell held to the documented outcome.

Entry points: the ``%%deepseek`` cell magic streaming and with ``--no-stream``, the chat widget, a batch
(``Session.batch``, which sends rows without streaming) and ``Session.ask``. Faults are scripted on the
module's one emulator (``EmulatorConfig.faults``, one entry, so it hits only the case's first request and a
retry is answered cleanly).

For every cell the test observes what happened and checks the contract (README "What it guarantees"):

* retried only when no output had begun: the number of chat requests the emulator received is exact;
* one clear line to the user: the magic prints the error's one-line ``_render_traceback_`` (no traceback),
  the chat transcript shows one line, a batch row's ``error`` cell is one line;
* the partial reply kept when output had begun, as a ``partial`` turn (and ``StreamInterrupted.partial``);
* history consistent: the next ask in the same session carries complete turns only, never a half turn;
* no duplicate billing: what the entry point counts for the case (``session.usage``; a batch row's tokens)
  equals the tokens of that request answered cleanly, once, and the next ask adds exactly its own usage.

The observed outcomes are rendered and compared with ``docs/reliability.md`` by the last test of this module,
which runs only when the whole matrix ran (a ``-k`` subset checks nothing). An ordinary run never writes the
file: when it is stale the test fails saying so. Regenerating is an explicit command::

    DEEPSEEK_MAGIC_REGENERATE_DOCS=1 python -m pytest tests/reliability/test_fault_matrix.py
"""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from comms import Transcript
from IPython.utils.capture import capture_output
from shell import TestingShell

from deepseek_magic import Session, Settings
from deepseek_magic.core.errors import DeepSeekError, StreamInterrupted
from deepseek_magic.core.events import Reply, Usage
from deepseek_magic.ipython.magics import DeepSeekMagics
from deepseek_magic.ui.chat_widget import ChatWidget

KEY = "sk-emulator"
REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
COMMAND = "DEEPSEEK_MAGIC_REGENERATE_DOCS=1 python -m pytest tests/reliability/test_fault_matrix.py"
#: Set to 1 to rewrite docs/reliability.md from the observed matrix (an ordinary run only compares).
REGENERATE_VARIABLE = "DEEPSEEK_MAGIC_REGENERATE_DOCS"
#: Client settings every entry point runs with: a read timeout the stall passes and quick back-off.
READ_TIMEOUT = 1.5  # far below the 5 s stall, far above a loaded machine's answer time
BACKOFF_BASE = 0.01

Delivery = Literal["stream", "body", "batch"]
Kept = Literal["text", "empty"]


# ------------------------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Fault:
    id: str
    label: str
    spec: str


@dataclass(frozen=True)
class Entry:
    id: str
    label: str
    #: How the request travels: a stream of chunks, one JSON body, or a batch row (one JSON body).
    delivery: Delivery


FAULTS = (
    Fault("429", "429 with Retry-After", "status=429,retry_after=1"),
    Fault("500", "500 server error", "status=500"),
    Fault("503", "503 overloaded", "status=503"),
    Fault("402", "402 insufficient balance", "status=402"),
    Fault("401", "401 bad key", "status=401"),
    Fault("drop", "drop after 5 chunks", "drop_after=5"),
    Fault("stall", "stall past the read timeout", "stall=5,stall_after=5"),
    Fault("malformed", "malformed chunk", "malformed_after=3"),
    Fault("keepalive", "keep-alive flood", "keepalive=5000"),
    Fault("trickle", "slow trickle", "trickle=0.01"),
    Fault("done-only", "only `[DONE]` (body: no choices)", "done_only=1"),
    Fault("usage-only", "usage alone, `choices: []`", "usage_only=1"),
    Fault("html", "200 with a proxy's HTML page", "html_200=1"),
    Fault("redirect", "301 redirect", "redirect=1"),
    Fault("close", "connection closed after the request", "close_after_request=1"),
    Fault("huge-line", "16 MiB line without a newline", "huge_line=16"),
    Fault("deep", "JSON nested 50,000 deep", "deep_json=50000"),
    Fault("huge-error", "500 with a 16 MiB body", "huge_error_body=16"),
)
ENTRIES = (
    Entry("magic-stream", "cell magic (stream)", "stream"),
    Entry("magic-no-stream", "cell magic `--no-stream`", "body"),
    Entry("chat", "chat widget", "stream"),
    Entry("batch", "batch (`Session.batch`)", "batch"),
    Entry("ask", "`Session.ask`", "stream"),
)


@dataclass(frozen=True)
class Expect:
    """The documented outcome of one cell."""

    requests: int
    complete: bool
    #: Exception type (batch rows: only the message is kept, so ``says`` is what is checked there).
    error: str | None = None
    #: Words the error line must contain.
    says: str | None = None
    #: The turn a broken reply leaves: with text, empty, or none at all.
    kept: Kept | None = None
    warning: bool = False
    #: Seconds the retry must wait (the fault's Retry-After).
    wait: float = 0.0
    #: The broken answer still reported usage (billed): it must be counted as one clean reply's tokens.
    billed: bool = False


def expected(fault: Fault, entry: Entry) -> Expect:
    """What the README promises for ``fault`` at ``entry``."""
    stream, batch = entry.delivery == "stream", entry.delivery == "batch"
    if fault.id == "429":  # refused before any output: retried once Retry-After has passed (batch: its own wait)
        return Expect(requests=2, complete=True, wait=0.95)
    if fault.id in ("500", "503"):  # the same, after a short exponential back-off
        return Expect(requests=2, complete=True)
    if fault.id == "402":
        return Expect(requests=1, complete=False, error="InsufficientBalanceError", says="Insufficient balance")
    if fault.id == "401":
        return Expect(requests=1, complete=False, error="AuthenticationError", says="Authentication failed")
    if fault.id == "drop":
        # A stream keeps what arrived; a JSON body cut short has nothing usable, its turn stays empty.
        kept: Kept | None = None if batch else ("text" if stream else "empty")
        return Expect(requests=1, complete=False, error="StreamInterrupted", says="dropped the connection", kept=kept)
    if fault.id == "stall":
        if stream:  # silence after output began: the partial reply is kept
            return Expect(requests=1, complete=False, error="StreamInterrupted", says="went quiet", kept="text")
        # A body is all or nothing: the read timeout fires before anything arrived.
        return Expect(requests=1, complete=False, error="APITimeoutError", says="did not answer within")
    if fault.id == "malformed":
        if stream:  # the broken chunk is skipped, the reply completes and says so
            return Expect(requests=1, complete=True, warning=True)
        kept = None if batch else "empty"
        return Expect(requests=1, complete=False, error="StreamInterrupted", says="not valid JSON", kept=kept)
    if fault.id in ("done-only", "usage-only"):  # a blank reply: an error, kept as partial, never cached
        kept = None if batch else "empty"
        return Expect(
            requests=1,
            complete=False,
            error="BlankReply",
            says="blank reply",
            kept=kept,
            billed=fault.id == "usage-only",
        )
    if fault.id == "html":  # not a reply: one line naming status and content type, nothing kept
        return Expect(requests=1, complete=False, error="UnexpectedResponse", says="200 OK (text/html)")
    if fault.id == "redirect":
        return Expect(requests=1, complete=False, error="UnexpectedResponse", says="301 Moved Permanently")
    if fault.id == "close":  # the request went out: never sent again (it may have been billed)
        return Expect(requests=1, complete=False, error="ConnectionLost", says="not sent again")
    if fault.id == "huge-line":
        if stream:  # the line is cut off at the decoder's bound; what arrived before it is kept
            return Expect(requests=1, complete=False, error="StreamInterrupted", says="over 8 MiB", kept="empty")
        kept = None if batch else "empty"
        return Expect(requests=1, complete=False, error="StreamInterrupted", says="not valid JSON", kept=kept)
    if fault.id == "deep":
        if stream:  # the over-deep chunk is skipped and counted, the reply completes
            return Expect(requests=1, complete=True, warning=True)
        kept = None if batch else "empty"
        return Expect(requests=1, complete=False, error="StreamInterrupted", says="nested too deeply", kept=kept)
    if fault.id == "huge-error":  # only the first 64 KiB of the error is read; a 500 is retried
        return Expect(requests=2, complete=True)
    return Expect(requests=1, complete=True)  # keep-alive flood, slow trickle: only slower


#: Cells where the current behaviour falls short of the contract (strict xfail: a fix makes them fail loudly).
KNOWN_GAPS: dict[tuple[str, str], str] = {}


# ------------------------------------------------------------------------------------------ observations


@dataclass
class Observed:
    """What one cell did, as seen from outside (emulator log, what was shown, the session)."""

    requests: int = 0
    reply: Reply | None = None
    #: Exception type name; for a batch row, the error's leading phrase (the row keeps only the message).
    error: str | None = None
    #: Every line that showed the error to the user.
    error_lines: list[str] = field(default_factory=list)
    traceback_shown: bool = False
    #: The session's turn for the case, if any, and the broken reply kept (turn, exception or entry).
    turn_status: str | None = None
    kept: Reply | None = None
    exception_partial: Reply | None = None
    #: Tokens counted for the case before the next ask, and the session's totals after it.
    billed: Usage = field(default_factory=Usage)
    next_usage: Usage = field(default_factory=Usage)
    total_after: Usage = field(default_factory=Usage)
    #: The body of the case's last request (the one answered), as the emulator received it.
    case_body: dict[str, Any] = field(default_factory=dict)
    #: Messages of the next ask's request, as the emulator received them.
    next_messages: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds the case took, next ask included (a lower bound is all that is checked: Retry-After).
    seconds: float = 0.0
    #: Extra problems an entry point found on its own (e.g. a batch's own tally).
    problems: list[str] = field(default_factory=list)


@dataclass
class Case:
    """One cell of the matrix: its fault, entry point, prompts and the emulator."""

    fault: Fault
    entry: Entry
    emu: Any

    @property
    def id(self) -> str:
        return f"{self.fault.id}-{self.entry.id}"

    @property
    def prompt(self) -> str:
        return f"Fault matrix case {self.id}: name three primes"

    @property
    def next_prompt(self) -> str:
        return f"Fault matrix case {self.id}: and now three squares"

    def sent(self) -> int:
        return sum(1 for request in self.emu.requests if request.path.endswith("/chat/completions"))

    def last_body(self) -> dict[str, Any]:
        chats = [request for request in self.emu.requests if request.path.endswith("/chat/completions")]
        body: dict[str, Any] = chats[-1].body
        return body

    def inject(self) -> int:
        """Script the fault for the next chat request; returns the request count before it."""
        assert self.emu.config.faults == [], "a previous case left a fault behind"
        self.emu.config.faults.append(self.fault.spec)
        return self.sent()

    def settings(self) -> Settings:
        return Settings.build(
            base_url=self.emu.base_url, api_key=KEY, read_timeout=READ_TIMEOUT, backoff_base=BACKOFF_BASE
        )


def tokens(usage: Usage | None) -> tuple[int, int, int]:
    """What a reply is billed by (the cache split and the price may differ between two sends)."""
    if usage is None:
        return (0, 0, 0)
    return (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)


def add(*usages: Usage | None) -> tuple[int, int, int]:
    counted = [tokens(usage) for usage in usages]
    return (sum(c[0] for c in counted), sum(c[1] for c in counted), sum(c[2] for c in counted))


# ---------------------------------------------------------------------------------------- entry points


def run_ask(case: Case) -> Observed:
    session = Session(settings=case.settings())
    seen = Observed()
    before = case.inject()
    try:
        seen.reply = session.ask(case.prompt, key="case")
    except DeepSeekError as exc:
        seen.error = type(exc).__name__
        seen.error_lines = exc._render_traceback_()
        seen.exception_partial = exc.partial if isinstance(exc, StreamInterrupted) else None
    seen.requests = case.sent() - before
    seen.case_body = case.last_body()
    follow_up(seen, session, "case", lambda: session.ask(case.next_prompt, key="next"), case)
    return seen


def run_chat(case: Case) -> Observed:
    session = Session(settings=case.settings())
    transcript = Transcript()
    chat = ChatWidget(session, display=transcript)
    seen = Observed()
    before = case.inject()
    returned = chat.send(case.prompt)
    seen.requests = case.sent() - before
    seen.case_body = case.last_body()
    entry = chat.entries[-1]
    assert transcript.lines[0] == f"You: {case.prompt}"
    if entry.error is None:
        seen.reply = returned
    else:
        # The error is one line of the chat's static transcript (the live box showed only the exchange).
        kept = chat.transcript()["text/plain"].splitlines()
        seen.error_lines = [line for line in kept if line.startswith(("⚠", "⏹"))]
        seen.error = entry.error.removeprefix("⚠ ").split(":", 1)[0]
        if returned is not None:
            seen.problems.append("send() returned a reply although the transcript shows an error")
    follow_up(seen, session, entry.key, lambda: _sent_reply(chat, case.next_prompt), case)
    return seen


def _sent_reply(chat: ChatWidget, text: str) -> Reply:
    reply = chat.send(text)
    assert reply is not None, chat.entries[-1].error
    return reply


def run_magic(case: Case, ip: TestingShell, *, stream: bool) -> Observed:
    name = f"fm-{case.id}"
    flags = f"-s {name}" if stream else f"-s {name} --no-stream"
    seen = Observed()
    before = case.inject()
    failure: BaseException | None = None
    with capture_output() as captured:
        try:
            ip.run_cell(f"%%deepseek {flags}\n{case.prompt}", cell_id=case.id)
        except Exception as exc:  # the testing shell re-raises what IPython showed
            failure = exc
    seen.requests = case.sent() - before
    seen.case_body = case.last_body()
    magics = ip.magics_manager.registry["DeepSeekMagics"]
    assert isinstance(magics, DeepSeekMagics)
    session = magics.get_session(name)
    shown = captured.stdout + captured.stderr
    seen.traceback_shown = "Traceback" in shown
    if failure is None:
        seen.reply = magics.last_reply
    else:
        seen.error = type(failure).__name__
        seen.error_lines = [line for line in shown.splitlines() if line.startswith(f"{seen.error}:")]
        seen.exception_partial = failure.partial if isinstance(failure, StreamInterrupted) else None

    def ask_next() -> Reply:
        ip.run_cell(f"%%deepseek {flags}\n{case.next_prompt}", cell_id=f"{case.id}-next")
        reply = magics.last_reply
        assert reply is not None
        return reply

    with capture_output():
        follow_up(seen, session, f"cell-{case.id}", ask_next, case)
    return seen


def run_batch(case: Case) -> Observed:
    session = Session(settings=case.settings())
    seen = Observed()
    before = case.inject()
    # Rows go without streaming; a batch raises the read timeout to 10 minutes unless told otherwise.
    frame = session.batch([case.prompt], "{item}", concurrency=1, read_timeout=READ_TIMEOUT)
    seen.requests = case.sent() - before
    seen.case_body = case.last_body()
    row = frame.iloc[0]
    if isinstance(row["error"], str):
        seen.error_lines = [row["error"]]
        seen.error = re.split(r" \(|;|:", row["error"], maxsplit=1)[0]
    else:
        seen.reply = Reply(content=str(row["reply"]))
    seen.billed = Usage(
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
    )
    figures = frame.attrs["batch"]
    if figures["sent"] != seen.requests:
        seen.problems.append(f"the batch says it sent {figures['sent']} requests, the emulator saw {seen.requests}")
    if seen.reply is not None and figures["tokens"] != sum(tokens(seen.billed)[:2]):
        seen.problems.append(f"the batch tallied {figures['tokens']} tokens for one row of {tokens(seen.billed)}")
    if session.turns:
        seen.problems.append("batch rows became turns of the session")
    if tokens(session.usage) != tokens(seen.billed):
        seen.problems.append(f"the session counts {tokens(session.usage)} after the batch, the row {seen.billed}")
    next_reply = session.ask(case.next_prompt, key="next")
    seen.next_messages = list(case.last_body()["messages"])
    seen.next_usage = next_reply.usage or Usage()
    seen.total_after = session.usage
    return seen


def follow_up(seen: Observed, session: Session, key: str, ask_next: Callable[[], Reply], case: Case) -> None:
    """Note the case's turn and billing, then ask the next question and note what it carried."""
    turn = session.turn(key)
    if turn is not None:
        seen.turn_status = turn.status
        if turn.status != "complete":
            seen.kept = turn.reply
    seen.billed = session.usage
    next_reply = ask_next()
    seen.next_messages = list(case.last_body()["messages"])
    seen.next_usage = next_reply.usage or Usage()
    seen.total_after = session.usage


RUNNERS: dict[str, Callable[[Case, pytest.FixtureRequest], Observed]] = {
    "magic-stream": lambda case, request: run_magic(case, request.getfixturevalue("ip"), stream=True),
    "magic-no-stream": lambda case, request: run_magic(case, request.getfixturevalue("ip"), stream=False),
    "chat": lambda case, request: run_chat(case),
    "batch": lambda case, request: run_batch(case),
    "ask": lambda case, request: run_ask(case),
}


# ----------------------------------------------------------------------------------------- the contract


def clean_tokens(case: Case, seen: Observed) -> tuple[int, int, int]:
    """The tokens the case's last request costs when answered without a fault, asked with plain httpx.

    The emulator answers the same content with the same reply (delivery fields aside), so this is an
    oracle independent of the package's own accounting.
    """
    body = {name: value for name, value in seen.case_body.items() if name not in ("stream", "stream_options")}
    answer = httpx.post(
        f"{case.emu.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    answer.raise_for_status()
    usage = answer.json()["usage"]
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return (int(usage["prompt_tokens"]), int(usage["completion_tokens"]), int(reasoning))


def problems(case: Case, seen: Observed, expect: Expect) -> list[str]:
    """Where ``seen`` breaks the contract for this cell (empty: it holds)."""
    found = list(seen.problems)
    if seen.requests != expect.requests:
        found.append(f"the emulator got {seen.requests} requests, expected {expect.requests}")
    if expect.wait and seen.seconds < expect.wait:
        found.append(f"the retry came after {seen.seconds:.2f} s, before Retry-After ({expect.wait:g} s)")
    if expect.complete:
        if seen.reply is None:
            found.append(f"expected a complete reply, got {seen.error}: {seen.error_lines}")
        elif not seen.reply.content or seen.reply.partial:
            found.append("the reply is empty or marked partial")
        elif expect.warning and not seen.reply.warnings:
            found.append("the skipped malformed chunk left no warning on the reply")
    else:
        if seen.reply is not None:
            found.append(f"expected a one-line {expect.error}, got a complete reply")
        elif case.entry.delivery != "batch" and seen.error != expect.error:
            found.append(f"expected {expect.error}, got {seen.error}")
        if seen.reply is None and (len(seen.error_lines) != 1 or "\n" in seen.error_lines[0]):
            found.append(f"the error was shown as {seen.error_lines!r}, not one line")
        if seen.reply is None and expect.says and not any(expect.says in line for line in seen.error_lines):
            found.append(f"the error line does not say {expect.says!r}: {seen.error_lines!r}")
    if seen.traceback_shown:
        found.append("a raw traceback was shown")
    found += kept_problems(case, seen, expect)
    found += history_problems(case, seen)
    found += billing_problems(case, seen)
    return found


def kept_problems(case: Case, seen: Observed, expect: Expect) -> list[str]:
    if case.entry.delivery == "batch":
        return []  # rows never become turns (checked in run_batch)
    want = "complete" if seen.reply is not None else ("partial" if expect.kept else None)
    if seen.turn_status != want:
        return [f"the session's turn is {seen.turn_status!r}, expected {want!r}"]
    if expect.kept is None or seen.reply is not None:
        return []
    kept = seen.kept
    assert kept is not None
    text = kept.content + kept.reasoning
    if expect.kept == "text" and not text:
        return ["the partial turn kept no text although output had begun"]
    if expect.kept == "empty" and text:
        return ["the partial turn of a broken body holds text"]
    if seen.exception_partial is not None and seen.exception_partial.content + seen.exception_partial.reasoning != text:
        return ["StreamInterrupted.partial differs from the kept turn"]
    return []


def history_problems(case: Case, seen: Observed) -> list[str]:
    """The next ask carries the case's turn only when it completed, and then exactly once."""
    users = [m["content"] for m in seen.next_messages if m["role"] == "user"]
    assistants = [m["content"] for m in seen.next_messages if m["role"] == "assistant"]
    carried = seen.reply is not None and case.entry.delivery != "batch"
    want_users = [case.prompt, case.next_prompt] if carried else [case.next_prompt]
    found = []
    if users != want_users:
        found.append(f"the next ask carried the user messages {users!r}, expected {want_users!r}")
    want_assistants = [seen.reply.content] if carried and seen.reply is not None else []
    if assistants != want_assistants:
        found.append("the next ask carried a half turn (or lost the complete one)")
    return found


def billing_problems(case: Case, seen: Observed) -> list[str]:
    found = []
    expect = expected(case.fault, case.entry)
    clean = clean_tokens(case, seen) if seen.reply is not None or expect.billed else (0, 0, 0)
    # A broken reply is billed by what the server reported for it (a cut stream reports nothing).
    want = clean if seen.reply is not None or expect.billed else (0, 0, 0)
    if tokens(seen.billed) != want:
        found.append(f"counted {tokens(seen.billed)} tokens for the case, one clean reply is {want}")
    if seen.kept is not None and tokens(seen.kept.usage) != want:
        found.append(f"the kept turn holds {tokens(seen.kept.usage)} tokens, the server billed {want}")
    # Batch rows count in the session too (per session and in total), next to the next ask's own.
    if tokens(seen.total_after) != add(seen.billed, seen.next_usage):
        found.append(f"after the next ask the session counts {tokens(seen.total_after)}, not case + next")
    return found


# ------------------------------------------------------------------------------------------ the outcome


def describe(case: Case, seen: Observed) -> str:
    """The observed outcome in a few words (deterministic: no timings or token counts)."""
    if seen.reply is not None:
        text = "complete" if seen.requests == 1 else f"retried {_times(seen.requests - 1)} → complete"
        if seen.reply.warnings:
            text += " + warning: " + "; ".join(seen.reply.warnings)
        return text
    lines = "1 line" if len(seen.error_lines) == 1 else f"{len(seen.error_lines)} lines"
    text = f"row error, {lines}: “{seen.error}”" if case.entry.delivery == "batch" else f"{lines}: {seen.error}"
    sent = "" if seen.requests == 1 else f", sent {_times(seen.requests)}"
    if seen.turn_status == "partial" and seen.kept is not None:
        has_text = bool(seen.kept.content or seen.kept.reasoning)
        return text + ("; partial kept" if has_text else "; empty partial turn") + (sent or ", not resent")
    return text + (sent or ", not retried")


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count}×"


#: Observed outcome per (fault id, entry id): filled by the matrix, rendered by the last test.
OUTCOMES: dict[tuple[str, str], tuple[str, list[str]]] = {}


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    yield emulator
    emulator.config.faults.clear()


@pytest.fixture
def ip(testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    testing_shell.user_ns.clear()
    testing_shell.init_user_ns()
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    with capture_output():
        testing_shell.run_line_magic("deepseek", f"config read_timeout={READ_TIMEOUT} backoff_base={BACKOFF_BASE}")
    yield testing_shell
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")


def _params() -> list[Any]:
    params = []
    for fault in FAULTS:
        for entry in ENTRIES:
            gap = KNOWN_GAPS.get((fault.id, entry.id))
            marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
            params.append(pytest.param(fault, entry, id=f"{fault.id}-{entry.id}", marks=marks))
    return params


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(("fault", "entry"), _params())
def test_fault_matrix(fault: Fault, entry: Entry, emu: Any, request: pytest.FixtureRequest) -> None:
    case = Case(fault, entry, emu)
    started = time.monotonic()
    seen = RUNNERS[entry.id](case, request)
    seen.seconds = time.monotonic() - started
    assert emu.config.faults == [], "the scripted fault was not consumed by the case's request"
    found = problems(case, seen, expected(fault, entry))
    OUTCOMES[(fault.id, entry.id)] = (describe(case, seen), found)
    assert not found, f"{case.id}: " + "; ".join(found)


def test_docs_reliability_md_is_the_observed_matrix() -> None:
    """docs/reliability.md is exactly the matrix this run observed; only an explicit request rewrites it."""
    missing = [(f.id, e.id) for f in FAULTS for e in ENTRIES if (f.id, e.id) not in OUTCOMES]
    if missing:
        pytest.skip(f"the matrix did not fully run ({len(missing)} of {len(FAULTS) * len(ENTRIES)} cells missing)")
    on_disk = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    rendered = render(OUTCOMES, generated_on(on_disk))
    if without_date(rendered) == without_date(on_disk):
        return
    if os.environ.get(REGENERATE_VARIABLE) == "1":
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(render(OUTCOMES, datetime.date.today().isoformat()), encoding="utf-8")
        return
    pytest.fail(
        f"{DOC.relative_to(REPO)} is stale: it differs from the matrix this run observed (the file was not "
        f"touched); regenerate it with `{COMMAND}`, review the diff and commit"
    )


# ------------------------------------------------------------------------------------------- the document

DATE_LINE = re.compile(r"^Generated on (\d{4}-\d{2}-\d{2}) by .*$", re.MULTILINE)


def generated_on(text: str) -> str:
    found = DATE_LINE.search(text)
    return found.group(1) if found else datetime.date.today().isoformat()


def without_date(text: str) -> str:
    return DATE_LINE.sub("Generated on (date) by …", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(outcomes: dict[tuple[str, str], tuple[str, list[str]]], date: str) -> str:
    """docs/reliability.md from the observed outcomes."""
    header = "| fault (emulator spec) | " + " | ".join(entry.label for entry in ENTRIES) + " |"
    rule = "|" + "---|" * (len(ENTRIES) + 1)
    rows = []
    for fault in FAULTS:
        cells = []
        for entry in ENTRIES:
            text, found = outcomes[(fault.id, entry.id)]
            mark = (
                " ✗ (known gap)" if (fault.id, entry.id) in KNOWN_GAPS else (" ⚠ " + "; ".join(found) if found else "")
            )
            cells.append(_cell(text + mark))
        rows.append(f"| {fault.label} (`{fault.spec}`) | " + " | ".join(cells) + " |")
    gaps: dict[str, list[str]] = {}
    for (fault_id, entry_id), reason in KNOWN_GAPS.items():
        gaps.setdefault(reason, []).append(f"{fault_id} × {entry_id}")
    lines = [
        "# Reliability: the fault matrix",
        "",
        "What each entry point does when the API misbehaves, as observed against the bundled emulator's fault",
        "injection (`deepseek_magic/emulator/faults.py`). Each fault is scripted for the first request of its case",
        "only, so a retry is answered cleanly. Every cell is checked by `tests/reliability/test_fault_matrix.py`:",
        "",
        "- **retried only when no output had begun**: the number of requests the emulator received is exact;",
        "- **one clear line to the user**: the magic prints the error's one-line form, never a traceback; the chat",
        "  transcript shows one line; a batch row's `error` cell is one line;",
        "- **partial reply kept** as a `partial` turn once output had begun, and never sent again;",
        "- **history consistent**: the next ask in the same session carries complete turns only, never a half turn;",
        "- **no duplicate billing**: the tokens counted for the case (`session.usage`; a batch row's columns) equal",
        "  those of the same request answered cleanly, once, and the next ask adds exactly its own; a batch's",
        "  spend is in `session.usage` too;",
        "- **nothing cached that is not an answer**: a blank reply is an error kept as a partial turn.",
        "",
        f"This file is generated, never hand-edited: `{COMMAND}` rewrites it. An ordinary test run only",
        "compares it with what it observed and fails when it is stale.",
        "",
        header,
        rule,
        *rows,
        "",
        "Legend: *retried once → complete*: the first answer was an error status, nothing had been shown, the",
        "client (a batch: its own back-off, honouring `Retry-After`) asked again and got the whole reply.",
        "*N line(s): Type*: what the user saw, by exception type (a batch row keeps the message, quoted up to",
        "its first clause). *partial kept*: the turn is `partial` with the text that arrived; *empty partial",
        "turn*: a JSON body was cut off, nothing usable arrived. *not retried* / *not resent*: the request went",
        "out exactly once. Stream entry points read the reply as server-sent events; `--no-stream` and batch",
        "rows read one JSON body, where a stall is a plain read timeout and a trickle has no chunks to slow.",
        "⚠ marks a check that failed in this run; ✗ a known gap (a strict `xfail` in the test).",
        "",
        "Known gaps:",
        "",
        *(f"- {', '.join(cells)}: {reason}." for reason, cells in sorted(gaps.items())),
        *([] if gaps else ["- none: every cell meets the contract."]),
        "",
        f"Generated on {date} by `{COMMAND}` (read timeout {READ_TIMEOUT} s, back-off base {BACKOFF_BASE} s).",
        "An ordinary test run only compares: it fails, leaving this file alone, when the observed matrix differs.",
        "",
    ]
    return "\n".join(lines)
