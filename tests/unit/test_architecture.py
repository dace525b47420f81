"""The package's import graph: layers that only import downwards, and no cycles.

docs/architecture.md describes the parts; this keeps the description true. Each module
belongs to the first layer whose prefix names it; a module may import its own layer and
the layers below, never one above. Within a layer, imports form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "exporter" / "notte_exporter"

# Lowest first. The simulator stands apart: it imports nothing of the exporter, and only
# the top (the daemon's demo mode, the command line) imports it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "durations", "redaction", "files", "logs", "options", "labels",
     "instrumentation", "keys", "notte_exporter"),
    ("settings", "accounts"),
    ("api",),
    ("polling",),
    ("metrics",),
    ("web",),
    ("reaper",),
    ("daemon", "pipeline", "simulator"),
    ("cli", "__main__", "healthcheck"),
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    inside = module.removeprefix("notte_exporter.") if module != "notte_exporter" else module
    first = inside.split(".")[0]
    for index, names in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.level:
                base = module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                yield ".".join([*base, node.module])
            elif node.module.startswith("notte_exporter"):
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("notte_exporter"))


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {imported for imported in imports_of(path) if imported in modules}
        for name, path in modules.items()
    }


def test_every_module_imports_only_its_layer_and_those_below() -> None:
    upward = [
        f"{module} imports {imported}"
        for module, imported_set in graph().items()
        for imported in imported_set
        if layer_of(imported) > layer_of(module)
        and not (module.startswith("notte_exporter.simulator") and "simulator" in imported)
    ]
    assert upward == []


def test_the_simulator_imports_nothing_of_the_exporter() -> None:
    outside = [
        f"{module} imports {imported}"
        for module, imported_set in graph().items()
        if module.startswith("notte_exporter.simulator")
        for imported in imported_set
        if not imported.startswith("notte_exporter.simulator")
    ]
    assert outside == []


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join((*path[path.index(module) :], module))
            raise AssertionError(f"import cycle: {cycle}")
        if module in done:
            return
        for imported in edges.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(edges):
        visit(module, ())
