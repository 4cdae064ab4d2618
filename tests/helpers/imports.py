"""Who imports whom among our packages, read from the source with ``ast``.

``imports_in(root)`` lists every import of one of our packages in every module under
``root``: absolute and relative, at the top of a module or inside a function, under
``TYPE_CHECKING`` or not. ``tests/test_layers.py`` checks the lists against the layer
rules; ``python -m tests.helpers.imports`` prints the import cycles between packages and
between files of different packages (the figures for issue 14's note).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = (
    "clockface",
    "recognition",
    "hardware",
    "kiosk",
    "enrollment",
    "central",
    "sync",
    "reports",
)


@dataclass(frozen=True, order=True)
class Import:
    """``file`` (a path relative to the root, with ``/``) imports ``module`` at ``line``."""

    file: str
    module: str
    line: int

    @property
    def importer(self) -> str:
        """The dotted name of the importing module (``kiosk/store.py`` -> ``kiosk.store``)."""
        return module_of(self.file)

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}"


def module_of(file: str) -> str:
    parts = file.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve(file: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    package = file.split("/")[:-1]  # the package holding the file (also for __init__.py)
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_of(root: Path, file: str, tree: ast.AST) -> Iterator[Import]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(file, node)
            for alias in node.names:
                # ``from kiosk import cli`` imports the module kiosk.cli.
                sub = f"{base}.{alias.name}" if base else alias.name
                yield Import(file, sub if _is_module(root, sub) else base, node.lineno)


def modules_in(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every ``.py`` file of the packages, as paths relative to ``root`` with ``/``."""
    return sorted(
        path.relative_to(root).as_posix()
        for package in packages
        for path in (root / package).rglob("*.py")
    )


def imports_in(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import of one of ``packages`` made by a module of ``packages``, sorted."""
    packages = tuple(packages)
    found: set[Import] = set()
    for file in modules_in(root, packages):
        tree = ast.parse((root / file).read_text(encoding="utf-8"), filename=file)
        for imp in _imports_of(root, file, tree):
            if imp.module.split(".")[0] in packages:
                found.add(imp)
    return sorted(found)


def package_of(dotted: str) -> str:
    return dotted.split(".")[0]


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def mutual_pairs(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs that import each other directly (the two-node cycles)."""
    edge_set = {(a, b) for a, b in edges if a != b}
    return sorted((a, b) for a, b in edge_set if a < b and (b, a) in edge_set)


def _target_module(root: Path, dotted: str) -> str:
    """The module file an imported name lives in (``kiosk.store.Event`` -> ``kiosk.store``)."""
    while dotted and not _is_module(root, dotted):
        dotted = dotted.rpartition(".")[0]
    return dotted


ROOT_CLI = ("clockface/cli.py", "clockface/__main__.py")


def report(root: Path) -> str:
    # The root CLI (the console command) is the composition root: it imports every
    # package's CLI by design and would put every package in one cycle with the base.
    found = [i for i in imports_in(root) if i.file not in ROOT_CLI]
    package_edges = [(package_of(i.importer), package_of(i.module)) for i in found]
    file_edges = [(i.importer, _target_module(root, i.module)) for i in found]
    # File cycles that cross a package boundary (a cycle inside one package is its own affair).
    file_cycles = [c for c in cycles(file_edges) if len({package_of(m) for m in c}) > 1]
    lines = [f"package cycles (components): {len(cycles(package_edges))}"]
    lines += [f"  {' <-> '.join(c)}" for c in cycles(package_edges)]
    lines.append(f"package pairs importing each other: {len(mutual_pairs(package_edges))}")
    lines += [f"  {a} <-> {b}" for a, b in mutual_pairs(package_edges)]
    lines.append(f"file cycles (components, all): {len(cycles(file_edges))}")
    lines += [f"  {' <-> '.join(c)}" for c in cycles(file_edges)]
    lines.append(f"file cycles crossing packages: {len(file_cycles)}")
    lines.append(f"file pairs importing each other: {len(mutual_pairs(file_edges))}")
    lines += [f"  {a} <-> {b}" for a, b in mutual_pairs(file_edges)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
