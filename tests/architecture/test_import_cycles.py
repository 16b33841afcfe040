"""No import cycles between the package's files.

Two files that import each other (directly or round a longer loop) can only be read, tested and moved
together, and which of them sees the other half-initialised depends on who is imported first. An import
inside a function only postpones that, so the graph counts every import a file makes — module level and
function level — except those under `if TYPE_CHECKING:`, which never run. An edge goes to the most
specific module an import names: `from ..store import audit` → `nurture_tui.store.audit`,
`from .mapping import text` → `….mapping`, `from . import mapping` → `….mapping`.

The graph is built from the source with `ast` (nothing is imported), so this also covers modules that
only load lazily, and a failure lists every cycle with the import lines that close it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nurture_tui

PACKAGE_DIR = Path(nurture_tui.__file__).resolve().parent


@dataclass(frozen=True)
class Edge:
    """`source` (in `file`) imports `target` at `line` (`lazy`: inside a function)."""

    source: str
    target: str
    file: str
    line: int
    lazy: bool


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name → file, for every `.py` file in the package (a package is its `__init__.py`)."""
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def file_imports(module: str, path: Path, known: set[str]) -> set[Edge]:
    """The imports of one file that land on modules in `known` (one edge per statement and target)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    file = "/".join(path.parts[-len(module.split(".")) - (path.name == "__init__.py"):])

    def resolve(name: str) -> str | None:
        """The longest known module `name` is in (`pkg.mod.func` → `pkg.mod`); None outside the package."""
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def absolute(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = package.split(".")
        parts = parts[: len(parts) - (node.level - 1)]  # level 1 = this package, 2 = its parent …
        return ".".join([*parts, node.module] if node.module else parts)

    edges: set[Edge] = set()

    def add(target: str | None, node: ast.stmt, lazy: bool) -> None:
        if target is not None and target != module:
            edges.add(Edge(module, target, file, node.lineno, lazy))

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.orelse:  # only the `else:` of `if TYPE_CHECKING:` runs
                visit(stmt, lazy)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(resolve(alias.name), node, lazy)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node)
            for alias in node.names:
                add(resolve(base if alias.name == "*" else f"{base}.{alias.name}"), node, lazy)
        lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, lazy)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return edges


def import_edges(package_dir: Path) -> list[Edge]:
    files = module_files(package_dir)
    known = set(files)
    edges = (e for module, path in files.items() for e in file_imports(module, path, known))
    return sorted(edges, key=lambda e: (e.file, e.line, e.target))


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one file: the modules that can all reach each other.
    (Mutual reachability, plainly computed: the graph has a few hundred files.)"""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    reach = {node: _reachable(graph, node) for node in graph}
    out: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        component = sorted(other for other in reach[node] if node in reach.get(other, ()))
        placed.update(component)
        out.append(component)
    return out


def describe(found: list[list[str]], edges: list[Edge]) -> str:
    lines = [f"{len(found)} import cycle(s) between files (imports inside functions count too):"]
    for component in found:
        members = set(component)
        lines.append(f"\n{len(component)} files: {', '.join(component)}")
        for e in edges:
            if e.source in members and e.target in members:
                lines.append(f"  {e.file}:{e.line} imports {e.target}{'  (in a function)' if e.lazy else ''}")
    return "\n".join(lines)


def test_no_import_cycles_between_files() -> None:
    edges = import_edges(PACKAGE_DIR)
    found = cycles(edges)
    assert not found, describe(found, edges)


def test_the_graph_counts_lazy_and_relative_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "",
        "a.py": "from .b import thing\n",  # module level, relative
        "b.py": "def f():\n    from . import c\n",  # inside a function
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import X\nelse:\n    import pkg.a\n",
        "d.py": "from pkg import c\n",  # d → c, but c → d is for type checkers only: no cycle
        "sub/__init__.py": "from .e import *\n",
        "sub/e.py": "from ..a import thing\n\nclass K:\n    def m(self):\n        from .. import sub\n",
    }
    for name, text in sources.items():
        (pkg / name).write_text(text)

    edges = import_edges(pkg)

    assert {(e.source, e.target, e.lazy) for e in edges} == {
        ("pkg.a", "pkg.b", False), ("pkg.b", "pkg.c", True), ("pkg.c", "pkg.a", False), ("pkg.d", "pkg.c", False),
        ("pkg.sub", "pkg.sub.e", False), ("pkg.sub.e", "pkg.a", False), ("pkg.sub.e", "pkg.sub", True),
    }
    found = cycles(edges)
    assert found == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub", "pkg.sub.e"]]
    report = describe(found, edges)
    assert "pkg/b.py:2 imports pkg.c  (in a function)" in report and "pkg/c.py:5 imports pkg.a" in report
