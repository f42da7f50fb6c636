"""The package's shape: no import cycles, a light HTTP client, short modules (issue 9's "Done when").

The imports are read from the source with ``ast``, not by importing it, so a cycle that happens to import fine
today is still caught.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PROJECT = Path(__file__).parents[1]
PACKAGE = PROJECT / "crucible_monitor"
MAX_MODULE_LINES = 500
HEAVY_FOR_A_CLIENT = {"pyarrow", "numpy"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _room(module: str) -> str:
    """The top-level room a module belongs to: ``crucible_monitor.collectors``, ``crucible_monitor.agent``..."""
    return ".".join(module.split(".")[:2])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, import_time_only: bool) -> Iterator[str]:
    """The package modules ``module`` imports; with ``import_time_only``, not those under ``if TYPE_CHECKING:``
    nor inside functions (they run on call, not on import).
    """
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[str]:
        if import_time_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if import_time_only and isinstance(node, ast.If) and _is_type_checking(node.test):
            children: list[ast.AST] = [*node.orelse]
        else:
            children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
        for child in children:
            yield from visit(child)

    tree = ast.parse(path.read_text(encoding="utf-8"))
    yield from (name for name in visit(tree) if name in MODULES and name != module)


def _cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (each node imports the next, the last is the first again), or [] when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(reversed(error.args[1]))
    return []


def test_no_module_imports_itself_back_at_import_time() -> None:
    graph = {module: set(_imports(module, import_time_only=True)) for module in MODULES}
    cycle = _cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_two_rooms_of_the_package_depend_on_each_other() -> None:
    graph: dict[str, set[str]] = {_room(module): set() for module in MODULES}
    for module in MODULES:
        imported = {_room(name) for name in _imports(module, import_time_only=False)}
        graph[_room(module)] |= imported - {_room(module)}
    cycle = _cycle(graph)
    assert not cycle, "rooms in a cycle (type-only and in-function imports count): " + " -> ".join(cycle)


def test_the_http_client_loads_neither_pyarrow_nor_numpy() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import crucible_monitor.remote"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # -X importtime writes "import time: <self> | <cumulative> | <indented module name>" per module
    loaded = {line.rpartition("|")[2].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    heavy = sorted(HEAVY_FOR_A_CLIENT & loaded)
    assert not heavy, f"`import crucible_monitor.remote` loads {', '.join(heavy)}"


def test_no_module_is_longer_than_500_lines() -> None:
    lengths = {module: len(path.read_text(encoding="utf-8").splitlines()) for module, path in MODULES.items()}
    too_long = {module: n for module, n in sorted(lengths.items()) if n > MAX_MODULE_LINES}
    assert not too_long, f"over {MAX_MODULE_LINES} lines: {too_long}"
