"""Fail when any levers_cli module takes part in an import cycle, at module level.

import-linter's ``acyclic_siblings`` contract (pyproject.toml) checks cycles between the
modules and subpackages of each package; this also catches a cycle through a package's own
``__init__.py`` (e.g. the package root), which that contract does not see. Imports inside
functions and under ``TYPE_CHECKING`` count: a cycle is a cycle however late it closes.

Usage: python scripts/check_import_cycles.py [package]   (exit 1 and the cycles when found)
"""

from __future__ import annotations

import sys

import grimp


def cycles(package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted, largest first."""
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
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
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found, key=lambda c: (-len(c), c))


def main() -> int:
    package = sys.argv[1] if len(sys.argv) > 1 else "levers_cli"
    found = cycles(package)
    for component in found:
        print(f"import cycle among {len(component)} modules: {', '.join(component)}")
    if not found:
        print(f"{package}: no import cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
