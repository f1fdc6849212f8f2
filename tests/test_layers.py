"""The package's layers hold: import-linter's contracts (pyproject.toml) are kept, and they bite.

Why three tests: the contracts passing proves little on its own — a layer
missing from the list, or a contract that never matches anything, passes too.
So every sub-package must be named in the layer contract (or be the
emulator), and a copy of the package with one upward import planted must
break the contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

import deepseek_magic

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(deepseek_magic.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_every_subpackage_sits_in_a_layer() -> None:
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages - {"emulator"} == set(layers)  # type: ignore[arg-type]
    top_level = {p.name for p in PACKAGE.glob("*.py")}
    assert top_level == {"__init__.py", "cli.py"}, "a module outside every layer is checked by no contract"


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "deepseek_magic"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = copy / "core" / "errors.py"
    errors.write_text(
        errors.read_text(encoding="utf-8") + "\n\ndef _planted() -> None:\n    import deepseek_magic.ipython.magics\n"
    )
    result = lint_imports(tmp_path, python_path=tmp_path / "src")
    assert result.returncode != 0
    assert "deepseek_magic.core is not allowed to import deepseek_magic.ipython" in result.stdout
