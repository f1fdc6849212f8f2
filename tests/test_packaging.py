"""What the README's main command installs is enough for the demo notebook."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from demo_notebooks import committed_text, shipped_notebooks

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def top_level_imports(source: str) -> set[str]:
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_lab_extra_covers_every_import_of_the_demo_notebooks() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = {re.split(r"[\[<>=!~ ]", spec)[0].lower() for spec in project["dependencies"]}
    installed |= {re.split(r"[\[<>=!~ ]", spec)[0].lower() for spec in project["optional-dependencies"]["lab"]}
    installed |= {"deepseek_magic"}
    for path in shipped_notebooks():
        notebook = nbformat.reads(committed_text(path), as_version=4)
        for cell in notebook.cells:
            if cell.cell_type != "code" or cell.source.lstrip().startswith("%%"):
                continue  # a cell magic's body is not Python
            python = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
            for module in top_level_imports(python):
                assert module.lower().replace("_", "-") in installed or module in installed, (
                    f"{path.name} imports {module!r}, which `pip install -e .[lab]` does not install"
                )
