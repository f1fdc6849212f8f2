"""The README's main command: `deepseek-magic lab` starts the emulator when no key is set, then JupyterLab."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from ports import free_port

from deepseek_magic import cli
from deepseek_magic.cli import EMULATOR_KEY, emulator_environment, needs_emulator
from deepseek_magic.providers import get_provider

REPO = Path(__file__).resolve().parents[1]


def test_needs_emulator_follows_the_provider_key() -> None:
    assert needs_emulator({})
    assert not needs_emulator({"DEEPSEEK_API_KEY": "sk-x"})
    assert needs_emulator({"DEEPSEEK_PROVIDER": "anyfast", "DEEPSEEK_API_KEY": "sk-x"})
    assert not needs_emulator({"DEEPSEEK_PROVIDER": "anyfast", "ANYFAST_API_KEY": "k"})


def test_the_demo_points_every_provider_at_the_emulator_through_its_own_variables() -> None:
    env = emulator_environment("http://127.0.0.1:5")
    for name in ("deepseek", "anyfast", "evolink", "runware"):
        provider = get_provider(name)
        assert env[provider.base_url_variable].startswith("http://127.0.0.1:5"), name
        assert env[provider.key_variable] == EMULATOR_KEY
    assert env["ANYFAST_BASE_URL"].endswith("/anyfast/v1") and env["EVOLINK_BASE_URL"].endswith("/evolink/v1")


def test_without_port_the_first_free_one_from_the_default_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    held = free_port()
    monkeypatch.setattr(cli, "DEFAULT_PORT", held)
    assert cli.choose_port(None) == held, "a free default is used"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", held))
        taken.listen(1)
        chosen = cli.choose_port(None)
        assert chosen is not None and held < chosen <= held + cli.PORT_TRIES, "not an ephemeral port from bind(0)"
        assert cli.choose_port(held) is None, "an explicit port that is taken is refused, not replaced"
        monkeypatch.setattr(cli, "PORT_TRIES", 0)
        assert cli.choose_port(None) not in (None, held), "with every try taken, any free port"


# ------------------------------------------------------------------ supervision, with a stand-in JupyterLab

#: A stand-in for JupyterLab: answers /api/status, ends with code 0 on POST /api/shutdown, dies on SIGTERM.
STUB_JUPYTER = """
import http.server, sys, threading
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def do_POST(self):
        self.send_response(200); self.end_headers()
        threading.Thread(target=server.shutdown).start()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.serve_forever()
"""

#: The launcher's own process, its real Supervisor and emulator, JupyterLab replaced by the stub.
LAUNCHER = """
import sys
from pathlib import Path
from deepseek_magic.cli import Lab, Supervisor

class StubLab(Lab):
    def command(self):
        return [sys.executable, "-c", sys.argv[2], str(self.port)]

lab = StubLab(root=Path.cwd(), notebook="demo.ipynb", port=int(sys.argv[1]), browser=False, environ={})
sys.exit(Supervisor(lab, emulator=True).run())
"""


@dataclass
class Launched:
    process: subprocess.Popen[str]
    port: int
    emulator_url: str = ""
    lines: list[str] = field(default_factory=list)

    def children(self) -> list[int]:
        """The launcher's child processes (Linux /proc)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            found += [int(pid) for pid in (task / "children").read_text().split()]
        return found

    def read_until(self, text: str, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return line
        pytest.fail(f"{text!r} not printed; got {self.lines}")

    def ready_line(self) -> str | None:
        """The supervisor's ready line, or ``None`` if its output ended first (the launcher exited)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "JupyterLab is ready on the notebook:" in line:
                return line
        return None

    def stderr(self) -> str:
        assert self.process.stderr is not None
        self.process.wait(timeout=30)
        return self.process.stderr.read()


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    if not Path("/proc/self/task").is_dir():
        pytest.skip("reads child processes from /proc (Linux)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(port), STUB_JUPYTER],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    run = Launched(process, port)
    try:
        first = run.read_until("local emulator at")
        run.emulator_url = first.split("emulator at ")[1].split()[0]
        ready = run.ready_line()
        if ready is None:
            pytest.fail(f"JupyterLab's ready line not printed; got {run.lines}; stderr {run.stderr()!r}")
        assert f"http://127.0.0.1:{port}/lab/tree/demo.ipynb?token=" in ready
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def assert_both_stopped(run: Launched, children: list[int]) -> None:
    assert not answers(run.emulator_url + "/models"), "the emulator still answers"
    assert not answers(f"http://127.0.0.1:{run.port}/api/status"), "JupyterLab still answers"
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), pid


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_stops_jupyterlab_and_the_emulator(launched: Launched, signum: int, code: int) -> None:
    children = launched.children()
    assert len(children) == 2
    os.kill(launched.process.pid, signum)  # the launcher alone, as a terminal's Ctrl-C reaches it
    assert launched.process.wait(timeout=60) == code
    assert_both_stopped(launched, children)


def test_when_the_emulator_ends_jupyterlab_is_stopped(launched: Launched) -> None:
    children = launched.children()
    emulator = next(pid for pid in children if "deepseek_magic.emulator" in Path(f"/proc/{pid}/cmdline").read_text())
    os.kill(emulator, signal.SIGKILL)
    assert launched.process.wait(timeout=60) == 4
    assert_both_stopped(launched, children)


def test_when_jupyterlab_shuts_down_the_emulator_is_stopped(launched: Launched) -> None:
    children = launched.children()
    httpx.post(f"http://127.0.0.1:{launched.port}/api/shutdown", timeout=10)
    assert launched.process.wait(timeout=60) == 0
    assert_both_stopped(launched, children)


def test_start_problems_are_one_line_and_exit_code_1(tmp_path: Path) -> None:
    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "deepseek_magic.cli", "lab", "--no-browser", *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)

    missing = lab("nowhere.ipynb")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "nowhere.ipynb is not a file" in missing.stderr
    (tmp_path / "demo.ipynb").write_text("{}", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = lab("demo.ipynb", "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 1 and "is in use; choose another with --port" in busy.stderr


def test_help_documents_the_exit_codes() -> None:
    text = subprocess.run(
        [sys.executable, "-m", "deepseek_magic.cli", "lab", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    for code in (
        "0 JupyterLab was shut down",
        "1 could not start",
        "3 JupyterLab ended with an error",
        "4 the emulator",
    ):
        assert code in flat
    assert "130 stopped with Ctrl-C" in flat and "143 stopped with SIGTERM" in flat


# ------------------------------------------------------------------ the real thing


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jupyter") is None, reason="JupyterLab is installed by the lab and test extras")
def test_lab_opens_the_demo_notebook_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
    )
    command = [sys.executable, "-m", "deepseek_magic.cli", "lab", "--no-browser", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    run = Launched(process, port)
    try:
        first = run.read_until("local emulator at")
        assert run.lines == [first], "the emulator line comes first"
        run.emulator_url = first.split("emulator at ")[1].split()[0]
        models = httpx.get(f"{run.emulator_url}/models", headers={"Authorization": "Bearer sk-emulator"}, timeout=10)
        assert models.status_code == 200
        ready = run.read_until("JupyterLab is ready on the notebook:", timeout=150)
        url = ready.split("notebook: ")[1].strip()
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks/quickstart.ipynb?token=")
        token = url.split("token=")[1]
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "jupyter-config-data" in page.text
        contents = httpx.get(
            f"http://127.0.0.1:{port}/api/contents/notebooks/quickstart.ipynb?content=0",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )
        assert contents.status_code == 200 and contents.json()["type"] == "notebook"
        children = run.children()
        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=90) == 130
        assert_both_stopped(run, children)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
