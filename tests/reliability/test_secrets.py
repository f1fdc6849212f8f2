"""A canary API key goes everywhere a key can go, then every place it could leak to is searched for it.

Leak channels (jupyter-engineering.md §6.1): cell outputs, widget state (nbclient saves it,
``store_widget_state=True``), tracebacks, logs, reprs, IPython's history database, saved session
files and the reply cache. The canary is random per test process (each pytest-xdist worker draws its
own; it never appears in a test id); besides the whole key, its first and last eight random characters
are searched for too (a partial leak). Masked forms that keep at most the last four characters
(``sk-…ab``, DeepSeek's own ``****abcd``) are fine.

Two parts:

* a real kernel runs every notebook in ``notebooks/`` (nbclient, a JupyterLab-like client that sends
  cell ids and plays the frontend typing the key into the settings form), then, in the same kernel,
  the settings form flow, every ``%deepseek`` subcommand, every error path the emulator can force,
  keys typed as options, and the reprs of everything; the saved notebook, the widget messages, the
  kernel's logging (DEBUG, to a file), its history database (with outputs logged), the session files
  and the reply cache are scanned;
* the same in-process in the testing shell (``capture_output`` + ``caplog`` at DEBUG), plus what
  needs a hostile server or a deterministic interrupt.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import IPython
import nbformat
import pytest
from comms import record_comms
from demo_notebooks import pristine_copy, shipped_notebooks
from IPython.core import ultratb
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from kernel import send_execute_request
from nbclient import NotebookClient
from shell import TestingShell

from deepseek_magic.client import ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import DeepSeekError, StreamInterrupted
from deepseek_magic.emulator import EmulatorConfig, run_in_thread
from deepseek_magic.ipython.magics import DeepSeekMagics

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = shipped_notebooks()
CANARY = f"sk-canary-{secrets.token_hex(16)}"
#: The whole key, then partial leaks: the first and the last eight random characters.
NEEDLES = (CANARY, CANARY[len("sk-canary-") :][:8], CANARY[-8:])
#: Cell metadata marking the cells that deliberately probe a known leak (scanned by their own test).
PROBE = "secrets_probe"
REFUSED = "API keys are not accepted as options"


def leaks(text: str | bytes) -> list[str]:
    """The needles found in ``text`` (bytes are searched as they are, e.g. a SQLite file)."""
    if isinstance(text, bytes):
        return [needle for needle in NEEDLES if needle.encode() in text]
    return [needle for needle in NEEDLES if needle in text]


def where(text: str, needle: str, width: int = 160) -> str:
    """A window around the first occurrence, for the failure message (the canary is not a real key)."""
    index = text.find(needle)
    return text[max(index - width, 0) : index + len(needle) + 40] if index >= 0 else ""


def assert_clean(text: str | bytes, what: str) -> None:
    """``text`` is not empty (a scan of nothing proves nothing) and holds no part of the canary."""
    assert len(text.strip()) > 0, f"nothing was scanned in {what}"
    found = leaks(text)
    if found:
        shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        raise AssertionError(f"the canary leaked into {what}: …{where(shown, found[0])}…")


# =============================================================================== real kernel


class FrontendClient(NotebookClient):
    """nbclient acting like JupyterLab: each execute_request carries ``metadata.cellId``; before a cell
    marked ``frontend_types_key`` it sends the canary to the key field's comm the way the browser does
    when the user presses Enter; every widget state message is recorded."""

    frontend_key: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wire: list[dict[str, Any]] = []

    def handle_comm_msg(self, outs: Any, msg: dict[str, Any], cell_index: int) -> None:
        self.wire.append(msg["content"])
        super().handle_comm_msg(outs, msg, cell_index)

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        kc = self.kc
        assert kc is not None
        if cell.get("metadata", {}).get("frontend_types_key"):
            previous = self.nb.cells[cell_index - 1]
            model_id = "".join(o.get("text", "") for o in previous.outputs).strip().splitlines()[-1]
            state = {"method": "update", "state": {"value": self.frontend_key}, "buffer_paths": []}
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": model_id, "data": state}))
        original = kc.execute

        def execute(code: str, **options: Any) -> str:
            return send_execute_request(kc, code, cell.id, **options)

        kc.execute = execute  # type: ignore[method-assign,assignment]
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            kc.execute = original  # type: ignore[method-assign]


def code(source: str, *, raises: bool = False, **metadata: Any) -> Any:
    cell = nbformat.v4.new_code_cell(source)
    if raises:
        cell.metadata["tags"] = ["raises-exception"]
    cell.metadata.update(metadata)
    return cell


MAGICS = "get_ipython().magics_manager.registry['DeepSeekMagics']"
FAULT_SPECS = (
    "status=400",
    "status=401",
    "status=402",
    "status=422",
    "status=429,retry_after=1",
    "status=500",
    "status=502",
    "status=503",
    "status=504",
    "drop_after=2",
    "malformed_after=1",
    "stall=3",
)


def extra_cells(work: Path) -> tuple[list[Any], list[Any]]:
    """Cells run before the notebook (logging) and after it (everything else), in the same kernel."""
    log = work / "kernel.log"
    first = [
        code(
            "import logging\n"
            f"logging.basicConfig(filename={str(log)!r}, level=logging.DEBUG, force=True,\n"
            "                    format='%(asctime)s %(name)s %(levelname)s %(message)s')"
        )
    ]
    set_fault = "%deepseek config \"extra_headers={{'X-Emulator-Fault': {spec!r}}}\""
    after = [
        code("%deepseek config max_retries=0"),
        # -- the settings form: the frontend types the key, then code sets it, tests, closes
        code("%deepseek settings"),
        code(f"form = {MAGICS}.last_form\nprint(form.api_key.model_id)"),
        code(
            "print(form.key_status.value)\nprint('field empty:', form.api_key.value == '')\n"
            f"print('explicit key set:', {MAGICS}.settings.api_key is not None)\nprint(repr(form))",
            frontend_types_key=True,
        ),
        code(
            "import os\nform.set_key(os.environ['DEEPSEEK_API_KEY'])\nprint(form.status.value, form.key_status.value)\n"
            "print(form.test_connection())\nprint(form.refresh_models())\nform"
        ),
        code("print(form.done())"),
        code("%deepseek settings"),  # a second, live form: its state is saved as it is
        # -- every subcommand
        *(
            code(f"%deepseek {words}")
            for words in ("", "help", "history", "sessions", "usage", "models", "balance", "config", "cache")
        ),
        code("%deepseek config model=deepseek-v4-pro thinking=False"),
        code(f"%deepseek save {work / 'session.json'}"),
        code(f"%deepseek load {work / 'session.json'} -s reloaded"),
        code("%deepseek history -s reloaded"),
        code("%deepseek chat"),
        code(
            f"chat = {MAGICS}.last_chat\nreply = chat.send('Hello from the chat box')\n"
            "print(repr(chat))\nprint(repr(reply))"
        ),
        code("%%deepseek --dry-run\nShow me the exact request"),
        code("%%deepseek --dry-run --provider anyfast\nAnd for a reseller"),
        code("%config DeepSeekMagics"),
        code("%deepseek reset reloaded"),
        # -- keys typed as options, and bad options: refused with one line
        code(
            "import os\nK = os.environ['DEEPSEEK_API_KEY']\n"
            "for line in (f'--api-key {K}', f'--api_key={K}', f'--key {K}', f'--system {K}', f'-m {K}', f'-s {K}'):\n"
            "    get_ipython().run_cell(f'%%deepseek {line}\\nhello', store_history=False)\n"
            "for words in (f'api_key={K}', f'key={K}', f'API-KEY={K}', f'apikey={K}'):\n"
            "    get_ipython().run_cell(f'%deepseek config {words}', store_history=False)\n"
            "del K"
        ),
        code("%%deepseek --provider nope\nhello", raises=True),
        code("%%deepseek --temperature 9\nhello", raises=True),
        code("%%deepseek --no-such-option\nhello", raises=True),
        code("%%deepseek --schema Nowhere\nhello", raises=True),
        code("%deepseek frobnicate", raises=True),
        code("%deepseek config \"extra_headers={'Authorization': 'Bearer x'}\"", raises=True),
        # -- every error the emulator can force, through the magic (displayed) ...
        *(
            cell
            for spec in ("status=401", "status=402", "status=429", "status=503", "drop_after=3", "malformed_after=2")
            for cell in (code(set_fault.format(spec=spec)), code(f"%%deepseek\nThis meets {spec}", raises=True))
        ),
        code(set_fault.format(spec="status=402")),
        code(
            "import pandas as pd\nrows = pd.DataFrame({'x': [1, 2]})",
        ),
        code("%%deepseek --over rows --no-cache\nSay {x}", raises=True),
        code("%deepseek config extra_headers={}"),
        # -- ... and through the Python API, sync and async, with every exception's str, repr and fields
        code(
            "from deepseek_magic import Session\nfrom deepseek_magic.core.errors import DeepSeekError\n"
            f"settings = {MAGICS}.settings\n"
            f"for spec in {FAULT_SPECS!r}:\n"
            "    s = Session('faults', settings=settings, max_retries=0, read_timeout=0.5,\n"
            "                extra_headers={'X-Emulator-Fault': spec})\n"
            "    try:\n"
            "        r = s.ask('fault ' + spec)\n"
            "        print(spec, 'answered', repr(r))\n"
            "    except DeepSeekError as exc:\n"
            "        print(spec, type(exc).__name__, repr(exc), str(exc), exc._render_traceback_(), vars(exc))\n"
            "    print([t.to_dict() for t in s.turns])\n"
            "s = Session('async', settings=settings, max_retries=0, extra_headers={'X-Emulator-Fault': 'status=402'})\n"
            "try:\n"
            "    await s.aask('async fault')\n"
            "except DeepSeekError as exc:\n"
            "    print(repr(exc))\n"
            "closed = Session('closed', settings=settings, base_url='http://127.0.0.1:9', max_retries=0)\n"
            "try:\n"
            "    closed.ask('nobody listens')\n"
            "except DeepSeekError as exc:\n"
            "    print(repr(exc), str(exc))"
        ),
        # -- reprs of everything that holds or touches the key
        code(
            f"magics = {MAGICS}\nsettings = magics.settings\nsession = magics.get_session()\n"
            "for obj in (settings, session, magics, magics.client, magics.last_reply, form, chat, chat.session):\n"
            "    print(type(obj).__name__, repr(obj), str(obj))\n"
            "print(settings.model_dump())\nprint(settings.model_dump_json())\nprint(settings.public_dict())\n"
            "print(settings.api_key, repr(settings.api_key), settings.merged(temperature=0.5))\n"
            "print(session.to_dict())\nex = session.exchange('next', key='k')\nrequest = ex.next_request()\n"
            "print(repr(request))\nprint(vars(ex))\nprint(session.dry_run('next'))\n"
            "print(magics.sessions)\nprint(vars(magics.client))\nprint(vars(form))\nsettings"
        ),
        code("session"),
        code("magics.last_reply"),
        code(f"%deepseek save {work / 'session-after-errors.json'}"),
        # -- an interrupt while the reply is awaited (what the Interrupt button does: SIGINT)
        code(set_fault.format(spec="stall=4")),
        *(
            cell
            for mode in ("Context", "Verbose")
            for cell in (
                code(f"%xmode {mode}"),
                code(
                    "import os, signal, threading\n"
                    "threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
                    "get_ipython().run_cell('%%deepseek --no-stream\\nWait for the interrupt', store_history=False)",
                    raises=True,
                    **({PROBE: "verbose-traceback"} if mode == "Verbose" else {}),
                ),
            )
        ),
        code("%xmode Context"),
        code("%deepseek config extra_headers={}"),
    ]
    return first, after


@dataclass
class KernelRun:
    """What running one notebook (plus the extra cells) left behind."""

    name: str
    nb: Any
    saved: str
    wire: list[dict[str, Any]]
    work: Path
    ipython_dir: Path
    files: dict[str, bytes] = field(default_factory=dict)

    def probe_cells(self) -> list[Any]:
        return [c for c in self.nb.cells if c.get("metadata", {}).get(PROBE)]

    def saved_without_probes(self) -> str:
        """The saved notebook's JSON with the probe cells' outputs left out (they have their own test)."""
        data = json.loads(self.saved)
        for cell in data["cells"]:
            if cell.get("metadata", {}).get(PROBE):
                cell["outputs"] = []
        return json.dumps(data, ensure_ascii=False)


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def kernel_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelRun]:
    source: Path = request.param
    work = tmp_path_factory.mktemp(f"secrets-{source.stem}")
    ipython_dir = work / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    for name in ("ipython_config.py", "ipython_kernel_config.py"):  # outputs go into the history DB too
        (profile / name).write_text("c.HistoryManager.db_log_output = True\n", encoding="utf-8")
    copy = pristine_copy(source, work)
    nb = nbformat.read(copy, as_version=4)
    first, after = extra_cells(work)
    nb.cells = [*first, *nb.cells, *after]
    nbformat.write(nb, copy)
    nb = nbformat.read(copy, as_version=4)
    with run_in_thread(EmulatorConfig(api_key=CANARY)) as emu, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPSEEK_BASE_URL", emu.base_url)
        patch.setenv("DEEPSEEK_API_KEY", CANARY)
        patch.setenv("DEEPSEEK_MAGIC_NO_AUTOLOAD", "1")
        patch.setenv("DEEPSEEK_MAGIC_CACHE_DIR", str(work / "cache"))
        patch.setenv("IPYTHONDIR", str(ipython_dir))
        client = FrontendClient(nb, timeout=60, kernel_name="python3", store_widget_state=True)
        client.ipython_hist_file = str(profile / "history.sqlite")  # nbclient's default is ":memory:"
        client.frontend_key = CANARY
        client.execute(cwd=str(work))
    nbformat.write(nb, copy)
    run = KernelRun(source.name, nb, copy.read_text(encoding="utf-8"), client.wire, work, ipython_dir)
    for path in sorted(work.rglob("*")):
        if path.is_file() and path != copy:
            run.files[str(path.relative_to(work))] = path.read_bytes()
    yield run


def outputs_text(cell: Any) -> str:
    return json.dumps(cell.get("outputs", []), ensure_ascii=False)


def cell_with(run: KernelRun, text: str) -> Any:
    return next(c for c in run.nb.cells if c.cell_type == "code" and text in c.source)


@pytest.mark.slow
def test_the_kernel_run_exercised_every_path(kernel_run: KernelRun) -> None:
    """Not a leak check: proof that the key was used and each error path really ran."""
    nb = kernel_run.nb
    for cell in nb.cells:
        if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", []):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{cell.source!r} failed: {errors[0]['ename']}: {errors[0]['evalue']}"
    frontend = outputs_text(cell_with(kernel_run, "field empty"))
    assert "key set (sk-…" in frontend and "field empty: True" in frontend and "explicit key set: True" in frontend
    assert "✓ connected" in outputs_text(cell_with(kernel_run, "form.test_connection()"))
    refused = outputs_text(cell_with(kernel_run, "for line in (f'--api-key"))
    assert refused.count(REFUSED) == 6 and refused.count("not set with %deepseek config") == 4
    shown = " ".join(outputs_text(c) for c in nb.cells if c.cell_type == "code")
    for name in (
        "AuthenticationError",
        "InsufficientBalanceError",
        "RateLimitError",
        "ServerError",
        "StreamInterrupted",
    ):
        assert name in shown
    faults = outputs_text(cell_with(kernel_run, "for spec in"))
    for word in ("InvalidRequestError", "APITimeoutError", "APIConnectionError", "****"):
        assert word in faults, word
    assert "[emulated]" in outputs_text(cell_with(kernel_run, "chat.send("))
    assert "Bearer sk-…" in outputs_text(cell_with(kernel_run, "Show me the exact request"))


def test_interrupts_were_delivered(kernel_run: KernelRun) -> None:
    interrupts = [c for c in kernel_run.nb.cells if "Wait for the interrupt" in c.source]
    assert len(interrupts) == 2
    for cell in interrupts:
        assert "KeyboardInterrupt" in outputs_text(cell)


def test_the_saved_notebook_has_no_key(kernel_run: KernelRun) -> None:
    saved = json.loads(kernel_run.saved)
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["model_name"] == "PasswordModel" for s in state.values()), "the form's state was saved"
    assert_clean(kernel_run.saved_without_probes(), f"the saved notebook {kernel_run.name}")


def test_no_widget_message_carries_the_key(kernel_run: KernelRun) -> None:
    assert len(kernel_run.wire) > 50
    assert_clean(json.dumps(kernel_run.wire, ensure_ascii=False, default=str), "a widget comm message")


def test_the_history_database_has_no_key(kernel_run: KernelRun) -> None:
    profile = {k: v for k, v in kernel_run.files.items() if k.startswith("ipython/")}
    assert "ipython/profile_default/history.sqlite" in profile, f"no history database in {kernel_run.ipython_dir}"
    blob = b"".join(profile.values())
    assert b"%deepseek settings" in blob and b"Session('default'" in blob, "inputs and outputs were logged"
    assert_clean(blob, "IPython's history database (or another file of the kernel's profile)")


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\S+) ", re.MULTILINE)


def log_records(log: str) -> list[tuple[str, str]]:
    """``(logger name, record text)`` for each record of the kernel's log file."""
    starts = list(LOG_RECORD.finditer(log))
    ends = [m.start() for m in starts[1:]] + [len(log)]
    return [(m.group(1), log[m.start() : end]) for m, end in zip(starts, ends, strict=True)]


def test_the_kernel_log_has_no_key(kernel_run: KernelRun) -> None:
    """Every record but those of the ``comm`` package's own logger (next test)."""
    records = log_records(kernel_run.files["kernel.log"].decode("utf-8", "replace"))
    names = {name for name, _ in records}
    assert {"httpx", "httpcore.http11"} <= names, "httpx and httpcore logged at DEBUG"
    assert_clean("".join(text for name, text in records if name != "Comm"), "the kernel's DEBUG log")


def test_the_comm_debug_log_has_no_key(kernel_run: KernelRun) -> None:
    """The comm package logs each incoming widget message in full at DEBUG: the one carrying the typed key
    must not be among its records (the form keeps that logger at INFO while it lives)."""
    typed = outputs_text(cell_with(kernel_run, "field empty"))
    assert "explicit key set: True" in typed, "the browser's message with the key reached the kernel"
    field = outputs_text(cell_with(kernel_run, "print(form.api_key.model_id)"))
    field_id = re.search(r"[0-9a-f]{32}", field)
    assert field_id is not None, field
    records = log_records(kernel_run.files["kernel.log"].decode("utf-8", "replace"))
    assert any(name == "httpx" for name, _ in records), "the log was written at DEBUG while the cells ran"
    comm = "".join(text for name, text in records if name == "Comm")
    assert field_id.group() not in comm, "the 'Comm' logger recorded a message of the key field"
    assert not leaks(comm), "the canary leaked into the 'Comm' logger's DEBUG records"


def test_session_files_and_the_reply_cache_have_no_key(kernel_run: KernelRun) -> None:
    files = kernel_run.files
    assert {"session.json", "session-after-errors.json"} <= set(files)
    assert any(name.startswith("cache/") for name in files)
    for name, content in files.items():
        if not name.startswith("ipython/") and name != "kernel.log":
            assert_clean(content, name)


def test_a_plain_traceback_of_an_interrupt_has_no_key(kernel_run: KernelRun) -> None:
    cell = next(c for c in kernel_run.nb.cells if "Wait for the interrupt" in c.source and not c.metadata.get(PROBE))
    text = outputs_text(cell)
    assert "KeyboardInterrupt" in text, "the cell was interrupted (else this scans nothing)"
    assert_clean(text, "the Context-mode traceback of an interrupted cell")


def test_a_verbose_traceback_of_an_interrupt_shows_frame_variables(kernel_run: KernelRun) -> None:
    (probe,) = kernel_run.probe_cells()
    text = outputs_text(probe)
    # The interrupt lands where the client's driver reads the answer: the step it performs is printed.
    assert "KeyboardInterrupt" in text and "ReadStep(response=" in text, (
        "Verbose mode printed the client's frame variables"
    )


def test_a_verbose_traceback_of_an_interrupt_has_no_key(kernel_run: KernelRun) -> None:
    (probe,) = kernel_run.probe_cells()
    assert_clean(outputs_text(probe), "a Verbose traceback of an interrupted --no-stream cell")


# =============================================================================== in-process


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with run_in_thread(EmulatorConfig(api_key=CANARY)) as emu:
        yield emu


@pytest.fixture
def ip(
    testing_shell: TestingShell, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[TestingShell]:
    monkeypatch.setenv("DEEPSEEK_BASE_URL", emulator.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", CANARY)
    if "deepseek_magic" in testing_shell.extension_manager.loaded:
        testing_shell.run_line_magic("unload_ext", "deepseek_magic")
    testing_shell.user_ns.clear()
    testing_shell.init_user_ns()
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    yield testing_shell
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")


def magics_of(ip: TestingShell) -> DeepSeekMagics:
    found = ip.magics_manager.registry["DeepSeekMagics"]
    assert isinstance(found, DeepSeekMagics)
    return found


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    log: list[Any] = []
    record_comms(monkeypatch, lambda comm_id, kind, data: log.append((kind, data)))
    return log


def run(ip: TestingShell, source: str, seen: list[str]) -> str:
    """Run a cell; an error's str, repr, fields and IPython rendering join ``seen``.

    Returns the error's type name, or "ok": the caller checks each command did what it should, so a command
    that failed early (and so exercised nothing) cannot pass as clean.
    """
    try:
        ip.run_cell(source)
    except Exception as exc:
        seen += [str(exc), repr(exc), repr(vars(exc))]
        render = getattr(exc, "_render_traceback_", None)
        if render is not None:
            seen += render()
        partial = getattr(exc, "partial", None) or getattr(exc, "reply", None)
        if partial is not None:
            seen.append(repr(partial))
        return type(exc).__name__
    return "ok"


def test_in_process_subcommands_errors_form_and_reprs_leak_nothing(
    ip: TestingShell, tmp_path: Path, wire: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    ran: list[str] = []  # "ok" or the error's type name, for each command in order

    def go(source: str) -> None:
        ran.append(run(ip, source, seen))

    magics = magics_of(ip)
    with capture_output() as captured:
        go("%deepseek config max_retries=0")
        go("%%deepseek\nA first question")
        go("%deepseek settings")
        form = magics.last_form
        data = {"method": "update", "state": {"value": CANARY}, "buffer_paths": []}
        form.api_key.comm.handle_msg({"content": {"data": data}, "buffers": []})  # the browser sends the key
        assert form.api_key.value == "" and magics.settings.api_key is not None
        form.set_key(CANARY)
        seen += [form.test_connection(), repr(form), form.status.value, form.key_status.value]
        seen.append(form.done())
        for words in ("", "help", "history", "sessions", "usage", "models", "balance", "config", "cache"):
            go(f"%deepseek {words}")
        go("%deepseek config model=deepseek-v4-pro")
        go(f"%deepseek save {tmp_path / 'session.json'}")
        go(f"%deepseek load {tmp_path / 'session.json'} -s again")
        go("%deepseek chat")
        seen.append(repr(magics.last_chat.send("Hello from the chat box")))
        go("%%deepseek --dry-run\nShow the request")
        go("%config DeepSeekMagics")
        for line in ("--provider nope", "--temperature 9", "--no-such-option", f"--api-key {CANARY}"):
            go(f"%%deepseek {line}\nhello")
        for spec in ("status=401", "status=402", "status=429", "status=503", "drop_after=3", "malformed_after=2"):
            go(f"%deepseek config \"extra_headers={{'X-Emulator-Fault': {spec!r}}}\"")
            go(f"%%deepseek\nThis meets {spec}")
        go("%deepseek config extra_headers={}")
        session = magics.get_session()
        seen += [repr(o) for o in (magics.settings, session, magics, magics.client, magics.last_reply)]
        seen += [str(magics.settings), json.dumps(session.to_dict()), repr(session.dry_run("next"))]
        seen += [magics.settings.model_dump_json(), repr(magics.settings.model_dump())]
        go("%deepseek reset --all")
    faults = ["AuthenticationError", "InsufficientBalanceError", "RateLimitError", "ServerError", "StreamInterrupted"]
    assert ran == [
        *["ok"] * 18,  # the first question, the form, every subcommand, save, load, chat, dry run, %config
        *["UsageError"] * 4,  # the refused options, the key typed as one among them
        *[outcome for fault in faults for outcome in ("ok", fault)],  # each injected fault: its own error
        *["ok", "ok"],  # malformed_after=2: the broken chunks are skipped and the reply completes
        *["ok", "ok"],  # fault header removed, reset
    ], "a command that failed early would have exercised (and scanned) nothing"
    for output in captured.outputs:
        seen += [json.dumps(output.data, default=str), json.dumps(output.metadata, default=str)]
    assert "AuthenticationError" in captured.stdout + captured.stderr + " ".join(seen)
    assert_clean(captured.stdout, "stdout")
    assert_clean(captured.stderr, "stderr")
    assert_clean("\n".join(seen), "an exception, a repr or a displayed output")
    assert "HTTP Request" in caplog.text
    # The comm package's own DEBUG record of the browser's message is covered by test_the_comm_debug_log_has_no_key.
    logged = [logging.Formatter().format(record) for record in caplog.records if record.name != "Comm"]
    assert_clean("\n".join(logged), "the DEBUG log")
    assert len(wire) > 20
    assert_clean(json.dumps(wire, default=str), "a widget comm message")
    assert_clean((tmp_path / "session.json").read_bytes(), "the saved session")
    cache = Path(str(tmp_path / "reply-cache"))
    assert any(cache.iterdir())
    for path in cache.iterdir():
        assert_clean(path.read_bytes(), f"the reply cache ({path.name})")


@pytest.mark.parametrize(
    "template",
    [
        "--api-key {key}",
        "--api-key={key}",
        "--api_key {key}",
        "--apikey {key}",
        "--key {key}",
        "-m deepseek-v4-pro --api-key {tail}",
        "--system {key}",
        '--system "use {key} please"',
        "-s {key}",
        "api_key={key}",
    ],
)
def test_a_key_typed_as_an_option_is_refused_without_echo(ip: TestingShell, emulator: Any, template: str) -> None:
    # The canary is filled in here, not in the parameters: test ids must not carry it (they are printed, and
    # pytest-xdist requires every worker, each with its own canary, to collect the same ids).
    line = template.format(key=CANARY, tail=CANARY[-20:])
    before = len(emulator.requests)
    with capture_output() as captured, pytest.raises(UsageError) as raised:
        ip.run_cell(f"%%deepseek {line}\nhello")
    assert REFUSED in str(raised.value)
    assert_clean(str(raised.value) + repr(raised.value) + captured.stdout + captured.stderr, "the refusal")
    assert len(emulator.requests) == before, "nothing was sent"


@pytest.mark.parametrize("name", ["api_key", "key", "API-KEY", "apikey", "api-key"])
def test_config_refuses_the_key_without_echo(ip: TestingShell, name: str) -> None:
    with capture_output() as captured, pytest.raises(UsageError) as raised:
        ip.run_cell(f"%deepseek config {name}={CANARY}")
    assert "not set with %deepseek config" in str(raised.value)
    assert_clean(str(raised.value) + captured.stdout + captured.stderr, "the refusal")
    assert magics_of(ip).settings.api_key is None


# ------------------------------------------------------------------- a server that echoes the key


def echoing_server(kind: str) -> Callable[[httpx.Request], httpx.Response]:
    """A (buggy or hostile) server that repeats the presented key in what it answers."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        chunk = json.dumps({"id": "x", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})
        error = {"error": {"message": f"key {key} was revoked", "code": "revoked"}}
        if kind == "401 json":
            return httpx.Response(401, json={"error": {"message": f"Your api key {key} is invalid"}})
        if kind == "400 json":
            return httpx.Response(400, json={"error": {"message": f"bad request from {key}"}})
        if kind == "502 html":
            return httpx.Response(502, text=f"<html><body>upstream refused {key}</body></html>")
        if kind == "200 json error":
            return httpx.Response(200, json=error)
        if kind == "stream error event":
            body = f"data: {chunk}\n\ndata: {json.dumps(error)}\n\n"
            return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
        raise AssertionError(kind)

    return handler


@pytest.mark.parametrize(
    "kind",
    [
        "401 json",
        "400 json",
        "502 html",
        "200 json error",
        "stream error event",
    ],
)
def test_a_server_echoing_the_key_does_not_make_it_leak(kind: str, tmp_path: Path) -> None:
    settings = Settings(api_key=CANARY, base_url="http://127.0.0.1:9", max_retries=0, stream=kind != "200 json error")
    session = Session(settings=settings, client=ChatClient(transport=httpx.MockTransport(echoing_server(kind))))
    with pytest.raises(DeepSeekError) as raised:
        session.ask("hello")
    exc = raised.value
    texts = [str(exc), repr(exc), repr(vars(exc)), *exc._render_traceback_()]
    if isinstance(exc, StreamInterrupted) and exc.partial is not None:
        texts.append(repr(exc.partial))
    texts.append(json.dumps(session.to_dict(), ensure_ascii=False))
    assert_clean("\n".join(texts), f"what the client made of a server echoing the key ({kind})")


# ------------------------------------------------------------------- tracebacks


class Interrupting(httpx.BaseTransport):
    """The kernel's Interrupt arriving while the request is being sent."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt


def plain_formatter(mode: str) -> ultratb.AutoFormattedTB:
    """IPython's own traceback formatter without colours (the keyword changed in IPython 9)."""
    if IPython.version_info >= (9,):
        return ultratb.AutoFormattedTB(mode=mode, theme_name="nocolor")
    return ultratb.AutoFormattedTB(mode=mode, color_scheme="NoColor")


def interrupted_traceback(mode: str) -> str:
    settings = Settings(api_key=CANARY, base_url="http://127.0.0.1:9", max_retries=0)
    session = Session(settings=settings, client=ChatClient(transport=Interrupting()))
    try:
        session.ask("hello")
    except KeyboardInterrupt as exc:
        formatter = plain_formatter(mode)
        return str(formatter.text(type(exc), exc, exc.__traceback__))
    raise AssertionError("no interrupt")


@pytest.mark.parametrize("mode", ["Plain", "Context"])
def test_a_default_traceback_has_no_key(mode: str) -> None:
    text = interrupted_traceback(mode)
    assert "KeyboardInterrupt" in text and "_open" in text
    assert_clean(text, f"an {mode} traceback")


def test_a_verbose_traceback_has_no_key() -> None:
    text = interrupted_traceback("Verbose")
    assert "KeyboardInterrupt" in text
    assert_clean(text, "a Verbose traceback")
