"""Auto-loading: ``jupyter-config/ipython-startup/50-deepseek_magic.py``.

The wheel maps the file (hatch ``shared-data``) to ``{sys.prefix}/etc/ipython/startup/``,
which IPython scans for start-up files, so after ``pip install`` every new kernel has
``%%deepseek`` without ``%load_ext``; ``DEEPSEEK_MAGIC_NO_AUTOLOAD=1`` turns it off.

Three layers of evidence:

* the built wheel holds the file at ``*.data/data/etc/ipython/startup/`` (and an installed
  copy, if any, is the current source);
* the file's logic, executed the way IPython executes it (``exec`` in a namespace), against
  a fake shell: off switch values, missing package, failing load, no leaked names;
* two real, fresh kernels (``jupyter_client``) whose temporary IPYTHONDIR has the file in
  ``profile_default/startup/`` (the same mechanism as the system directory): one runs
  ``%%deepseek --dry-run`` with no ``%load_ext``, the other, with the off switch, does not
  know ``%%deepseek``.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from demo_notebooks import committed_text

REPO = Path(__file__).resolve().parents[1]
STARTUP_FILE = REPO / "jupyter-config" / "ipython-startup" / "50-deepseek_magic.py"
DEMO = REPO / "notebooks" / "quickstart.ipynb"
INSTALLED_AS = "etc/ipython/startup/50-deepseek_magic.py"
OFF_SWITCH = "DEEPSEEK_MAGIC_NO_AUTOLOAD"
FAKE_KEY = "sk-test-autoload-not-a-real-key-0123456789"
HELPER = "_deepseek_magic_autoload"


# --- packaging --------------------------------------------------------------------------------------------------


def test_wheel_installs_the_startup_file_under_sys_prefix(tmp_path: Path) -> None:
    """A real wheel build: the file is shared data bound for ``{prefix}/etc/ipython/startup/``."""
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(REPO))
    wheels = list(builder.build(directory=str(tmp_path), versions=["standard"]))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        shared = [name for name in names if name.endswith(f".data/data/{INSTALLED_AS}")]
        assert len(shared) == 1, [name for name in names if ".data/" in name]
        assert shared[0].startswith("deepseek_magic-"), shared[0]
        assert wheel.read(shared[0]) == STARTUP_FILE.read_bytes()
        assert not [name for name in names if name.startswith("jupyter-config/")], "shipped twice"
        assert "deepseek_magic/py.typed" in names, "the PEP 561 marker ships, so users' type checkers read our hints"
        assert "deepseek_magic/data/prices.json" in names
        assert "deepseek_magic/ui/live_reply.js" in names, "the live widget's browser module ships in the wheel"


def test_installed_copy_is_the_current_source() -> None:
    """``pip install`` (hatchling copies shared data for editable installs too) copies, never links."""
    installed = Path(sys.prefix) / INSTALLED_AS
    if not installed.exists():
        pytest.skip(f"not installed in {sys.prefix} (pip install -e . installs it)")
    assert installed.read_bytes() == STARTUP_FILE.read_bytes(), (
        f"{installed} is stale: run `pip install -e .` again after editing {STARTUP_FILE.name}"
    )


# --- the file's logic, against a fake shell -------------------------------------------------------------------


class FakeExtensionManager:
    def __init__(self, error: Exception | None = None) -> None:
        self.loaded: list[str] = []
        self.error = error

    def load_extension(self, name: str) -> str | None:
        if self.error is not None:
            raise self.error
        self.loaded.append(name)
        return None


def run_startup_file(
    monkeypatch: pytest.MonkeyPatch,
    *,
    shell: Any,
    off: str | None = None,
    package_present: bool = True,
) -> dict[str, Any]:
    """Execute the file as IPython does (``exec`` in the user namespace); return that namespace."""
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    if off is None:
        monkeypatch.delenv(OFF_SWITCH, raising=False)
    else:
        monkeypatch.setenv(OFF_SWITCH, off)
    if not package_present:
        real_find_spec = importlib.util.find_spec

        def find_spec(name: str, package: str | None = None) -> Any:
            return None if name == "deepseek_magic" else real_find_spec(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    namespace: dict[str, Any] = {"__name__": "__main__", "__doc__": "user doc"}
    code = compile(STARTUP_FILE.read_text(encoding="utf-8"), str(STARTUP_FILE), "exec")
    exec(code, namespace)
    return namespace


def fake_shell(error: Exception | None = None) -> Any:
    return SimpleNamespace(extension_manager=FakeExtensionManager(error))


@pytest.mark.parametrize("off", [None, "", "0", " 0 "])
def test_loads_through_the_extension_manager(monkeypatch: pytest.MonkeyPatch, off: str | None) -> None:
    shell = fake_shell()
    namespace = run_startup_file(monkeypatch, shell=shell, off=off)
    assert shell.extension_manager.loaded == ["deepseek_magic"]
    assert set(namespace) == {"__name__", "__doc__", "__builtins__"}, "helper names leaked"
    assert namespace["__doc__"] == "user doc"


@pytest.mark.parametrize("off", ["1", "yes", "true", "anything"])
def test_off_switch(monkeypatch: pytest.MonkeyPatch, off: str) -> None:
    shell = fake_shell()
    namespace = run_startup_file(monkeypatch, shell=shell, off=off)
    assert shell.extension_manager.loaded == []
    assert HELPER not in namespace


def test_no_ipython_shell_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = run_startup_file(monkeypatch, shell=None)
    assert HELPER not in namespace


def test_missing_package_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    shell = fake_shell()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace = run_startup_file(monkeypatch, shell=shell, package_present=False)
    assert shell.extension_manager.loaded == []
    assert HELPER not in namespace


def test_failing_load_warns_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    shell = fake_shell(ImportError("no module named httpx"))
    with pytest.warns(RuntimeWarning, match=r"auto-load failed \(ImportError: no module named httpx\)"):
        namespace = run_startup_file(monkeypatch, shell=shell)
    assert HELPER not in namespace


# --- real, fresh kernels ----------------------------------------------------------------------------------------


@dataclass
class Cell:
    status: str
    ename: str = ""
    evalue: str = ""
    text: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.text)


def _collect(messages: list[str]) -> Callable[[dict[str, Any]], None]:
    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            messages.append(content["text"])
        elif kind in ("display_data", "execute_result", "update_display_data"):
            messages.append(str(content["data"].get("text/plain", "")))
        elif kind == "error":
            messages.append(f"{content['ename']}: {content['evalue']}")

    return hook


def run_in_fresh_kernel(tmp_path: Path, cells: list[str], *, autoload_off: bool) -> list[Cell]:
    """Start a kernel whose profile has the start-up file; run ``cells``; always shut it down."""
    from jupyter_client.manager import start_new_kernel

    ipython_dir = tmp_path / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(STARTUP_FILE, startup / STARTUP_FILE.name)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DEEPSEEK", "ANYFAST"))}
    env.update(
        IPYTHONDIR=str(ipython_dir),
        DEEPSEEK_API_KEY=FAKE_KEY,
        DEEPSEEK_BASE_URL="http://127.0.0.1:9/v1",  # unroutable: --dry-run must send nothing anyway
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    if autoload_off:
        env[OFF_SWITCH] = "1"
    km, kc = start_new_kernel(startup_timeout=30, kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        results = []
        for code in cells:
            texts: list[str] = []
            try:
                reply = kc.execute_interactive(code, timeout=20, output_hook=_collect(texts))
            except (TimeoutError, queue.Empty) as exc:  # pragma: no cover - a hung kernel
                raise AssertionError(f"kernel did not answer within 20 s: {code!r}") from exc
            content = reply["content"]
            results.append(Cell(content["status"], content.get("ename", ""), content.get("evalue", ""), texts))
        return results
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


NAMESPACE = "print(sorted(get_ipython().user_ns))"
#: The demo notebook's first code cell, as committed (it loads the extension where auto-loading is off).
DEMO_FIRST_CELL = next(
    cell.source for cell in nbformat.reads(committed_text(DEMO), as_version=4).cells if cell.cell_type == "code"
)
DRY_RUN = "%%deepseek --dry-run\nhello from a fresh kernel"
NOT_FOUND = "Cell magic `%%deepseek` not found"


@pytest.fixture(scope="module")
def autoloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Cell]]:
    yield run_in_fresh_kernel(
        tmp_path_factory.mktemp("autoload_on"),
        [
            NAMESPACE,
            DRY_RUN,
            "print(sorted(get_ipython().extension_manager.loaded), get_ipython().user_ns['__doc__'])",
            "%load_ext deepseek_magic",
            "%unload_ext deepseek_magic",
            DRY_RUN,
            "%load_ext deepseek_magic",
            DEMO_FIRST_CELL,
            DRY_RUN,
        ],
        autoload_off=False,
    )


@pytest.fixture(scope="module")
def switched_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Cell]]:
    yield run_in_fresh_kernel(
        tmp_path_factory.mktemp("autoload_off"),
        [NAMESPACE, DRY_RUN, "%load_ext deepseek_magic", DRY_RUN],
        autoload_off=True,
    )


@pytest.mark.slow
def test_fresh_kernel_has_deepseek_without_load_ext(autoloaded: list[Cell]) -> None:
    _, dry_run, loaded, load_again, unload, after_unload, *_ = autoloaded
    assert dry_run.status == "ok", dry_run
    assert "Dry run: nothing was sent." in dry_run.output
    assert "hello from a fresh kernel" in dry_run.output
    assert FAKE_KEY not in dry_run.output
    assert loaded.status == "ok", loaded
    assert "'deepseek_magic'" in loaded.output, "loaded through the extension manager"
    assert "already loaded" in load_again.output, "%load_ext after the auto-load is a no-op"
    assert unload.status == "ok", unload
    assert after_unload.status == "error"
    assert after_unload.ename == "UsageError"
    assert after_unload.evalue.startswith(NOT_FOUND), after_unload.evalue


@pytest.mark.slow
def test_off_switch_in_a_fresh_kernel(switched_off: list[Cell]) -> None:
    _, dry_run, load_ext, after_load = switched_off
    assert dry_run.status == "error"
    assert dry_run.ename == "UsageError"
    assert dry_run.evalue.startswith(NOT_FOUND), dry_run.evalue
    assert load_ext.status == "ok", load_ext
    assert after_load.status == "ok", "%load_ext by hand still works"
    assert "Dry run: nothing was sent." in after_load.output


@pytest.mark.slow
def test_autoload_leaks_nothing_into_the_user_namespace(autoloaded: list[Cell], switched_off: list[Cell]) -> None:
    with_autoload, without = autoloaded[0], switched_off[0]
    assert with_autoload.status == without.status == "ok"
    assert with_autoload.output == without.output, "the start-up file added or removed user names"
    assert HELPER not in with_autoload.output
    assert "Automatically created module for IPython interactive environment" in autoloaded[2].output


@pytest.mark.slow
def test_the_demo_loads_silently_after_the_auto_load(autoloaded: list[Cell]) -> None:
    """The demo's first cell in a kernel that auto-loaded: no "already loaded" line, the magics still there."""
    first, after = autoloaded[-2:]
    assert "deepseek_magic" in DEMO_FIRST_CELL
    assert first.status == "ok" and first.output == "", first
    assert after.status == "ok" and "Dry run: nothing was sent." in after.output
