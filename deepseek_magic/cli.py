"""The ``deepseek-magic`` command: the demo launcher and the emulator.

``deepseek-magic lab`` is the project's main job: JupyterLab on the demo
notebook. Without an API key in the environment it starts the bundled
emulator first and points the kernels at it, so the demo works offline and a
first-time user sees real streaming before they have an account.

The launcher supervises JupyterLab and the emulator as one: each runs as a
child process in its own process group (so Ctrl-C reaches the launcher alone,
not JupyterLab's "Shutdown this Jupyter server (y/[n])?" prompt), and when
either ends, or the launcher gets Ctrl-C, SIGTERM or SIGHUP (a closed
terminal), both are stopped: JupyterLab with SIGTERM (it shuts its kernels
down), the emulator after it. The printed URL opens the demo notebook itself.

Exit codes of ``deepseek-magic lab`` (also in ``--help``): see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import quote

from deepseek_magic.core.extras import emulator_missing

DEMO_NOTEBOOK = Path("notebooks") / "quickstart.ipynb"
EMULATOR_KEY = "sk-emulator"
#: JupyterLab's port unless ``--port`` says otherwise (a free one is picked when it is taken).
DEFAULT_PORT = 8888
#: How many ports after :data:`DEFAULT_PORT` are tried before any free one (Jupyter's own default).
PORT_TRIES = 50
#: Demo pacing: close to the real service, so streaming is visible.
DEMO_TPS, DEMO_TTFT = 60.0, 0.6
#: How long JupyterLab may take to answer before the launcher gives up (a cold start on a slow disk is ~20 s).
START_TIMEOUT = 120.0
#: After SIGTERM, how long each child gets to shut down (JupyterLab stops its kernels) before SIGKILL.
STOP_TIMEOUT = 30.0

OK, START_FAILED, USAGE, LAB_FAILED, EMULATOR_FAILED = 0, 1, 2, 3, 4
#: ``deepseek-magic lab``'s exit codes (shown by ``--help`` and the README).
EXIT_CODES = {
    OK: "JupyterLab was shut down from its own menu; the emulator was stopped",
    START_FAILED: "could not start: JupyterLab or the emulator is not installed, the notebook is missing, "
    "the port is taken, or a process ended during start-up",
    USAGE: "bad command line",
    LAB_FAILED: "JupyterLab ended with an error (its log is above); the emulator was stopped",
    EMULATOR_FAILED: "the emulator ended unexpectedly; JupyterLab was stopped",
    128 + signal.SIGINT: "stopped with Ctrl-C (SIGINT); both were stopped",
    128 + signal.SIGTERM: "stopped with SIGTERM; both were stopped",
}
if hasattr(signal, "SIGHUP"):
    EXIT_CODES[128 + signal.SIGHUP] = "the terminal closed (SIGHUP); both were stopped"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "emulator":
        problem = emulator_missing()
        if problem:
            print(f"deepseek-magic emulator: {problem}", file=sys.stderr)
            return 1
        from deepseek_magic.emulator.cli import main as emulator_main

        return int(emulator_main(args[1:]))
    parser = argparse.ArgumentParser(
        prog="deepseek-magic", description="JupyterLab on the DeepSeek demo notebook, and the local emulator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser(
        "lab",
        help="JupyterLab on the demo notebook (emulator when no key is set)",
        description="JupyterLab on a notebook (the demo by default), with the local emulator when no API key is set. "
        "Ctrl-C stops both.",
        epilog="exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    lab.add_argument("notebook", nargs="?", default=str(DEMO_NOTEBOOK))
    lab.add_argument(
        "--port", type=int, default=None, help=f"JupyterLab's port (default {DEFAULT_PORT}, or a free one)"
    )
    lab.add_argument("--no-browser", action="store_true")
    lab.add_argument("--emulator", action="store_true", help="use the emulator even when a key is set")
    commands.add_parser("emulator", help="run the local DeepSeek emulator (see --help after it)")
    options = parser.parse_args(args)
    if options.command == "lab":
        return run_lab(
            options.notebook,
            port=options.port,
            browser=not options.no_browser,
            force_emulator=options.emulator,
        )
    return 2  # pragma: no cover - argparse already exits for unknown commands


def needs_emulator(environ: dict[str, str] | os._Environ[str]) -> bool:
    """True when no key for the configured provider is in the environment."""
    from deepseek_magic.config.settings import key_variable
    from deepseek_magic.core.errors import ConfigError

    provider = (environ.get("DEEPSEEK_PROVIDER") or "deepseek").strip().lower()
    try:
        variable = key_variable(provider)
    except ConfigError:
        variable = "DEEPSEEK_API_KEY"
    return not environ.get(variable)


def emulator_environment(base_url: str) -> dict[str, str]:
    """Every provider's base URL and key pointed at the emulator at ``base_url``.

    A key is sent only to its own provider's base URL, so each provider gets
    its own pair of variables (the emulator serves the resellers' paths too).
    """
    return {
        "DEEPSEEK_PROVIDER": "deepseek",
        "DEEPSEEK_BASE_URL": base_url,
        "DEEPSEEK_API_KEY": EMULATOR_KEY,
        "ANYFAST_BASE_URL": f"{base_url}/anyfast/v1",
        "ANYFAST_API_KEY": EMULATOR_KEY,
        "EVOLINK_BASE_URL": f"{base_url}/evolink/v1",
        "EVOLINK_API_KEY": EMULATOR_KEY,
        "RUNWARE_BASE_URL": base_url,
        "RUNWARE_API_KEY": EMULATOR_KEY,
    }


def run_lab(notebook: str, *, port: int | None, browser: bool, force_emulator: bool = False) -> int:
    """Start JupyterLab on ``notebook`` (and the emulator when needed), supervise both; returns the exit code."""
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print('deepseek-magic lab: JupyterLab is not installed: pip install -e ".[lab]"', file=sys.stderr)
        return START_FAILED
    environ = dict(os.environ)
    use_emulator = force_emulator or needs_emulator(environ)
    problem = emulator_missing() if use_emulator else None
    if problem:
        print(f"deepseek-magic lab: {problem}", file=sys.stderr)
        return START_FAILED
    path = Path(notebook)
    if not path.is_file():
        print(
            f"deepseek-magic lab: {notebook} is not a file (run it from a checkout of the project, "
            "or name a notebook: deepseek-magic lab PATH)",
            file=sys.stderr,
        )
        return START_FAILED
    chosen = choose_port(port)
    if chosen is None:
        print(f"deepseek-magic lab: port {port} is in use; choose another with --port", file=sys.stderr)
        return START_FAILED
    root, relative = notebook_root(path)
    lab = Lab(root=root, notebook=relative, port=chosen, browser=browser, environ=environ)
    return Supervisor(lab, emulator=use_emulator).run()


def choose_port(wanted: int | None) -> int | None:
    """``wanted`` if free (``None`` when taken); without one, the first free of :data:`DEFAULT_PORT` and the
    :data:`PORT_TRIES` after it, as Jupyter itself does, else any free port.

    Why those first: ports the kernel hands out for ``bind(0)`` come from its ephemeral range, which client
    connections use too; one may take the number between this check and JupyterLab's own bind.
    """
    if wanted is not None:
        return wanted if port_free(wanted) else None
    for port in range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES + 1):
        if port_free(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def notebook_root(path: Path) -> tuple[Path, str]:
    """JupyterLab's root directory and the notebook's path in it: the current directory when it holds the notebook."""
    here, resolved = Path.cwd().resolve(), path.resolve()
    try:
        return here, resolved.relative_to(here).as_posix()
    except ValueError:
        return resolved.parent, resolved.name


@dataclass
class Lab:
    """What JupyterLab is started with."""

    root: Path
    notebook: str
    port: int
    browser: bool
    environ: dict[str, str]
    token: str = field(default_factory=lambda: secrets.token_hex(24))

    @property
    def url(self) -> str:
        """The URL that opens the notebook itself (not the Launcher)."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{quote(self.notebook)}?token={self.token}"

    def command(self) -> list[str]:
        # `jupyter lab` would run the first `jupyter-lab` on PATH, maybe another installation's (and its kernels
        # another deepseek_magic); `-m jupyterlab` and this interpreter's scripts first keep it all in this one.
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            f"--LabApp.default_url=/lab/tree/{quote(self.notebook)}",
        ]
        if not self.browser:
            command.append("--no-browser")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI machines run as root; Jupyter refuses otherwise
        return command


class Stop(Exception):
    """A stop signal arrived (seen at the supervisor's next check): stop both children, exit with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Supervisor:
    """JupyterLab (and the emulator) as one: either ends, both end; signals stop both.

    Why child processes in their own process groups: a terminal's Ctrl-C goes
    to the whole foreground group, and JupyterLab answers it with a y/n prompt
    of its own; here only the launcher gets it and stops JupyterLab with
    SIGTERM, which shuts its kernels down. The emulator runs as a process too
    (not a thread), so its ending is seen like JupyterLab's.
    """

    def __init__(self, lab: Lab, *, emulator: bool, out: IO[str] | None = None) -> None:
        self.lab = lab
        self.use_emulator = emulator
        self.out = out if out is not None else sys.stdout
        self.emulator: subprocess.Popen[str] | None = None
        self.jupyter: subprocess.Popen[bytes] | None = None
        #: Set by the signal handlers; checked between steps, so no step is cut in half (a child half-started).
        self.signalled: int | None = None

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def check(self) -> None:
        """Raise :class:`Stop` if a stop signal has arrived."""
        if self.signalled is not None:
            raise Stop(128 + self.signalled)

    def on_signal(self, signum: int) -> None:
        self.signalled = signum

    def run(self) -> int:
        restore = _install_stop_handlers(self.on_signal)
        try:
            return self._run()
        except Stop as stop:
            return stop.code
        finally:
            try:
                self.stop_all()
            finally:
                restore()

    def _run(self) -> int:
        environ = self.lab.environ
        if self.use_emulator:
            url = self.start_emulator()
            if url is None:
                return START_FAILED
            environ.update(emulator_environment(url))
            self.say(f"No API key set: the demo talks to the local emulator at {url} (emulated replies).")
        environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
        self.check()
        self.jupyter = subprocess.Popen(self.lab.command(), env=environ, cwd=self.lab.root, start_new_session=True)
        if not self.wait_until_ready():
            return START_FAILED
        self.say(f"JupyterLab is ready on the notebook: {self.lab.url}")
        self.say("Ctrl-C stops JupyterLab" + (" and the emulator." if self.use_emulator else "."))
        return self.watch()

    def start_emulator(self) -> str | None:
        """Start the emulator on a free port; its base URL (read from its first line), or ``None`` with a line."""
        command = [
            sys.executable,
            "-m",
            "deepseek_magic.emulator",
            "--port",
            "0",
            "--tps",
            str(DEMO_TPS),
            "--ttft",
            str(DEMO_TTFT),
            "--api-key",
            EMULATOR_KEY,
        ]
        self.emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.emulator.stdout is not None
        first = self._first_line(self.emulator.stdout, timeout=30.0)
        if not first or "http://" not in first:
            print("deepseek-magic lab: the emulator did not start (see above)", file=sys.stderr)
            return None
        # The rest of its banner (and anything later) is read and dropped, so a full pipe never blocks it.
        threading.Thread(target=self.emulator.stdout.read, name="emulator-output", daemon=True).start()
        return "http://" + first.split("http://", 1)[1].split()[0]

    def wait_until_ready(self) -> bool:
        """Poll JupyterLab's API until it answers; ``False`` (with a line) if a child ends or time runs out."""
        import httpx

        deadline = time.monotonic() + START_TIMEOUT
        status = f"http://127.0.0.1:{self.lab.port}/api/status"
        headers = {"Authorization": f"token {self.lab.token}"}
        while time.monotonic() < deadline:
            self.check()
            ended = self.ended()
            if ended is not None:
                print(f"deepseek-magic lab: {ended} during start-up (see above)", file=sys.stderr)
                return False
            try:
                if httpx.get(status, headers=headers, timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        print(f"deepseek-magic lab: JupyterLab did not answer within {START_TIMEOUT:.0f} s", file=sys.stderr)
        return False

    def ended(self) -> str | None:
        """Which child has ended (as a phrase), or ``None`` while both run."""
        if self.jupyter is not None and self.jupyter.poll() is not None:
            return f"JupyterLab ended (code {self.jupyter.returncode})"
        if self.emulator is not None and self.emulator.poll() is not None:
            return f"the emulator ended (code {self.emulator.returncode})"
        return None

    def watch(self) -> int:
        """Wait until a child ends (signals arrive as :class:`Stop`); the exit code."""
        while True:
            self.check()
            assert self.jupyter is not None
            if self.jupyter.poll() is not None:
                code = self.jupyter.returncode
                if code == 0:
                    self.say("JupyterLab has shut down; stopping the emulator." if self.emulator else "Done.")
                    return OK
                print(f"deepseek-magic lab: JupyterLab ended with code {code}; stopping.", file=sys.stderr)
                return LAB_FAILED
            if self.emulator is not None and self.emulator.poll() is not None:
                print(
                    f"deepseek-magic lab: the emulator ended (code {self.emulator.returncode}); stopping JupyterLab.",
                    file=sys.stderr,
                )
                return EMULATOR_FAILED
            time.sleep(0.2)

    def _first_line(self, stream: IO[str], timeout: float) -> str:
        """The first line of ``stream``, or ``""`` after ``timeout`` seconds (stop signals still honoured)."""
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while reader.is_alive() and time.monotonic() < deadline:
            self.check()
            reader.join(0.1)
        return lines[0] if lines else ""

    def stop_all(self) -> None:
        """JupyterLab first (its kernels use the emulator), then the emulator; SIGKILL whatever outlives its wait."""
        for process in (self.jupyter, self.emulator):
            if process is not None:
                _stop(process)


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGTERM, a bounded wait, then SIGKILL to the child's own process group (only if it is still there)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            if hasattr(os, "killpg"):
                os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): nothing else is in it
            else:  # pragma: no cover - Windows has no process groups of this kind
                process.kill()
        process.wait(timeout=5)


def _install_stop_handlers(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP call ``on_signal``; returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    names = ("SIGINT", "SIGTERM", "SIGHUP")
    wanted = [getattr(signal, name) for name in names if hasattr(signal, name)]

    def handler(signum: int, frame: FrameType | None) -> None:
        on_signal(signum)

    previous = {number: signal.signal(number, handler) for number in wanted}

    def restore() -> None:
        for number, old in previous.items():
            signal.signal(number, old)

    return restore


def _has_module(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
