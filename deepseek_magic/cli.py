"""The ``deepseek-magic`` command: the demo launcher and the emulator.

``deepseek-magic lab`` is the project's main job: JupyterLab on the demo
notebook. Without an API key in the environment it starts the bundled
emulator first and points the kernels at it, so the demo works offline and a
first-time user sees real streaming before they have an account.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from deepseek_magic.core.extras import emulator_missing

DEMO_NOTEBOOK = Path("notebooks") / "quickstart.ipynb"
EMULATOR_KEY = "sk-emulator"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "emulator":
        problem = emulator_missing()
        if problem:
            print(f"deepseek-magic emulator: {problem}", file=sys.stderr)
            return 1
        from deepseek_magic.emulator.cli import main as emulator_main

        return int(emulator_main(args[1:]))
    parser = argparse.ArgumentParser(prog="deepseek-magic", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lab = commands.add_parser("lab", help="JupyterLab on the demo notebook (emulator when no key is set)")
    lab.add_argument("notebook", nargs="?", default=str(DEMO_NOTEBOOK))
    lab.add_argument("--port", type=int, default=8888)
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


@contextmanager
def demo_emulator(environ: dict[str, str]) -> Iterator[str]:
    """Run the emulator with demo pacing and point ``environ`` at it."""
    from deepseek_magic.emulator import EmulatorConfig, run_in_thread

    with run_in_thread(EmulatorConfig(api_key=EMULATOR_KEY, tps=60.0, ttft=0.6)) as emu:
        environ.update(emulator_environment(emu.base_url))
        yield emu.base_url


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


def run_lab(notebook: str, *, port: int, browser: bool, force_emulator: bool = False) -> int:
    """Start JupyterLab on ``notebook``; returns its exit code."""
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print('JupyterLab is not installed: pip install -e ".[lab]"', file=sys.stderr)
        return 1
    environ = dict(os.environ)
    use_emulator = force_emulator or needs_emulator(environ)
    if use_emulator and emulator_missing():
        print(f"deepseek-magic lab: {emulator_missing()}", file=sys.stderr)
        return 1
    context = demo_emulator(environ) if use_emulator else nullcontext(None)
    with context as emulator_url:
        if emulator_url:
            print(
                f"No API key set: the demo talks to the local emulator at {emulator_url} (emulated replies).",
                flush=True,
            )
        # `jupyter lab` would run the first `jupyter-lab` on PATH, maybe another installation's (and its kernels
        # another deepseek_magic); `-m jupyterlab` and this interpreter's scripts first keep it all in this one.
        environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            notebook,
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
        ]
        if not browser:
            command.append("--no-browser")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI machines run as root; Jupyter refuses otherwise
        process = subprocess.Popen(command, env=environ)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            return process.wait(timeout=30)


def _has_module(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
