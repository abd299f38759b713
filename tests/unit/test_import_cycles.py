"""No import cycles in `serving/` and `training/`, counting imports inside functions too (a cycle
hidden in a function is still a cycle: it only moves the failure to run time)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("serving", "training")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific project module that importing ``name`` means (``a.b.c`` -> ``a.b`` when
    ``c`` is a name inside module ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _packages(name: str, modules: dict[str, Path]) -> list[str]:
    """The project packages that hold module ``name`` (``a`` and ``a.b`` for ``a.b.c``)."""
    parts = name.split(".")
    return [package for i in range(1, len(parts)) if (package := ".".join(parts[:i])) in modules]


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (functions included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            targets.update(target for name in names if (target := _resolve(name, modules)) and target != module)
        # Importing a.b.c first runs the packages a and a.b (their __init__), unless the importer
        # is inside them (then they ran before it).
        targets.update(parent for target in list(targets) for parent in _packages(target, modules) if not module.startswith(f"{parent}."))
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_finder_sees_a_cycle_hidden_in_a_function():
    # The finder itself must be able to fail: a two-module cycle through a function-level import.
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_the_graph_counts_the_packages_an_import_runs():
    graph = import_graph()
    # serving.service imports serving.http.app, which first runs serving.http's __init__.
    assert "serving.http" in graph["serving.service"] and "serving" not in graph["serving.service"]


def test_the_graph_includes_imports_inside_functions():
    graph = import_graph()
    # serving.service imports serving.grpc.server inside its start-up hook, not at the top.
    assert "serving.grpc.server" in graph["serving.service"]


def test_serving_and_training_have_no_import_cycles():
    assert find_cycles(import_graph()) == []
