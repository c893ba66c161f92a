"""How the modules depend on one another, read from their source: no import circles, and
no module reading another's private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted(ROOT.glob("packages/*/src/*")),
    ROOT / "examples/plugin/src/par_example_launcher",
]


def _modules() -> dict[str, Path]:
    """Every module of every package, by dotted name."""
    found = {}
    for top in SOURCES:
        for path in sorted(top.rglob("*.py")):
            parts = path.relative_to(top.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()
PACKAGES = {top.name for top in SOURCES}


def _runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """The module's nodes outside ``if TYPE_CHECKING:`` blocks (imports only for types)."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules of ours an import statement imports (a package's parents included)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".")
        if node.level:
            is_package = MODULES[module].name == "__init__.py"
            base = base[: len(base) - node.level + is_package]
            prefix = ".".join([*base, *([node.module] if node.module else [])])
        else:
            prefix = node.module or ""
        names = [
            f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names
        ]
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            parent = ".".join(parts[:i])
            if parent in MODULES and parent != module and not module.startswith(parent + "."):
                yield parent


def _imports() -> dict[str, set[str]]:
    """What each module imports when it runs, at its top or inside a function."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        graph[module] = {
            dep
            for node in _runtime_nodes(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for dep in _imported(module, node)
        }
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, round in a circle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                circles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return circles


def test_no_modules_import_one_another_in_a_circle() -> None:
    """Imports only for type hints (under ``TYPE_CHECKING``) are the only way back."""
    graph = _imports()
    assert "par.client.client" in graph["par.cluster.cluster"]  # the graph is read at all
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _own(node: ast.Attribute, made: set[str]) -> bool:
    """Whether an attribute is its object's own: ``self._x``, ``cls._x``, or one of an
    object named in ``made`` (a function the module made and marks, another project's
    module)."""
    return isinstance(node.value, ast.Name) and node.value.id in {"self", "cls", *made}


def _made(tree: ast.Module) -> set[str]:
    """The functions and classes a module defines."""
    kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    return {node.name for node in ast.walk(tree) if isinstance(node, kinds)}


def _defined(tree: ast.Module) -> set[str]:
    """The names a module defines: its functions, classes, and every name or attribute it
    assigns (``self._x = ...`` makes ``_x`` its own)."""
    names = _made(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and _own(node, set())
        ):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _ours(node: ast.ImportFrom) -> bool:
    """Whether an import takes names from one of our modules."""
    return bool(node.level) or (node.module or "").split(".")[0] in PACKAGES


def _external(tree: ast.Module) -> set[str]:
    """The names a module binds to other projects' modules and names (``import os``):
    their private names are theirs to document (``os._exit``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external = [a for a in node.names if a.name.split(".")[0] not in PACKAGES]
            names.update((a.asname or a.name).split(".")[0] for a in external)
        elif isinstance(node, ast.ImportFrom) and not _ours(node):
            names.update(a.asname or a.name for a in node.names)
    return names


def _foreign_private_reads(module: str) -> list[str]:
    """Where ``module`` reads a private name that another of our modules defines."""
    tree = ast.parse(MODULES[module].read_text())
    own, made = _defined(tree), _made(tree) | _external(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _ours(node):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _private(a.name)]
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in own
            and not _own(node, made)
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_reads_the_private_names_of_another(module: str) -> None:
    assert _foreign_private_reads(module) == []
