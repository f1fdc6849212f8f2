"""Imports between the package's modules form no cycle, lazy (function-level) imports included.

Why walk the source: a cycle hidden by importing inside a function still
ties two modules together (neither can be understood, tested or moved
alone); only imports under ``if TYPE_CHECKING:`` are left out, since they
never run. A lazy import is allowed when it points the same way as the
module-level ones (down the layers), e.g. to keep ``%load_ext`` fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

import deepseek_magic

ROOT = Path(deepseek_magic.__file__).parent
PACKAGE = "deepseek_magic"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, modules: set[str]) -> str | None:
    """The package module ``name`` lives in (``a.b.C`` → ``a.b``), or ``None`` outside the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                stem = node.module or ""
                if node.level:
                    stem = f"{base}.{stem}" if stem else base
                targets = [f"{stem}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _resolve(target, modules)
                # A package's __init__ re-exporting its own modules is not an edge back up.
                if (
                    found is not None
                    and found != name
                    and not (found.startswith(name + ".") and path.stem == "__init__")
                ):
                    graph[name].add(found)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walker_sees_lazy_imports() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.client" in graph[f"{PACKAGE}.conversation.session"]
    lazy = graph[f"{PACKAGE}.conversation.exchange"]
    assert f"{PACKAGE}.features.structured" in lazy, "a function-level import is an edge"


def test_no_import_cycle_between_the_package_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])
