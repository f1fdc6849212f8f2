"""The demo notebooks as the repository ships them, copied into a test's own folder.

Tests never execute or write ``notebooks/`` in place, and never depend on a
user's edits there: the copy is made from the committed version (``git show
HEAD:…``) when the checkout has one, with outputs cleared, so a demo a user
ran, edited and saved in JupyterLab changes nothing in the suite.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"


def shipped_notebooks() -> list[Path]:
    """The demo notebooks, by their path in the repository (only for naming and parametrizing)."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def committed_text(path: Path) -> str:
    """The committed text of ``path``, or the file as it is when git has no committed version."""
    relative = path.resolve().relative_to(REPO).as_posix()
    try:
        result = subprocess.run(
            ["git", "show", f"HEAD:{relative}"], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        result = None
    if result is not None and result.returncode == 0 and result.stdout:
        return result.stdout
    return path.read_text(encoding="utf-8")


def pristine_copy(path: Path, folder: Path) -> Path:
    """A copy of the shipped notebook in ``folder``, outputs and execution counts cleared."""
    notebook = nbformat.reads(committed_text(path), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    nbformat.write(notebook, copy)
    return copy
