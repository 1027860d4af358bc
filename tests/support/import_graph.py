"""The import graph of the package, read from its source with ``ast``: which module imports which.

Every import counts, at module level or inside a function, under ``TYPE_CHECKING`` or not, so a
cycle cannot hide behind a late import. ``python -m tests.support.import_graph`` prints the graph between
modules and between layers (a subpackage, or a top-level module).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "mistral_magic"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """The package's modules that one import statement names."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = {target} | {f"{target}.{alias.name}" for alias in node.names}
    known = set(known)
    return {name for name in names if name in known and name.startswith(PACKAGE)}


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (a package's own ``__init__`` is not an edge)."""
    found = modules()
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= _imported(node, name, is_package, found)
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def layer(module: str) -> str:
    """``mistral_magic.api.client`` -> ``api``; ``mistral_magic.session`` -> ``session``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    layers: dict[str, set[str]] = {}
    for source, targets in graph.items():
        if source == PACKAGE:
            continue  # the package's entry points import what they expose
        edges = layers.setdefault(layer(source), set())
        edges |= {layer(t) for t in targets if layer(t) != layer(source) and t != PACKAGE}
    return layers


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> None:
    graph = import_graph()
    short = {name: name.removeprefix(PACKAGE + ".") for name in graph}
    print("Modules (-> what each imports):")
    for name in sorted(graph):
        print(f"  {short[name]:<22} -> {', '.join(sorted(short.get(t, t) for t in graph[name])) or '-'}")
    print("\nLayers:")
    layers = layer_graph(graph)
    for name in sorted(layers):
        print(f"  {name:<12} -> {', '.join(sorted(layers[name])) or '-'}")
    print(f"\nCycles between modules: {cycles(graph) or 'none'}")
    print(f"Cycles between layers: {cycles(layers) or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
