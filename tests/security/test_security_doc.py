"""docs/security.md names the test proving each mitigation: every name must exist (renaming a test breaks this)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"


def referenced() -> list[tuple[str, str]]:
    """(test file, test name) for every reference, ``::name`` shorthand following the last file named."""
    pairs: list[tuple[str, str]] = []
    current = ""
    for match in re.finditer(r"`(tests/[\w/]+\.py)?::(test_\w+)`", DOC.read_text(encoding="utf-8")):
        current = match.group(1) or current
        pairs.append((current, match.group(2)))
    return pairs


def test_every_test_named_in_the_security_doc_exists() -> None:
    pairs = referenced()
    assert len(pairs) >= 30, "the doc names the tests that prove it"
    missing = []
    for path, name in pairs:
        tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
        if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
