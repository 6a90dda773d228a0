"""Imports point one way, read from the source with ``ast``.

    cli → api → crawl / fetch / sites / store (+ schema) / export / jobs
        → records / errors / config / fetched / jsontext / inputs / interrupts

Every import counts: at module level, inside a function (the lazy ones), and under
``TYPE_CHECKING``; a dependency hidden from the import-time graph is still a dependency
of the design. Where today's code breaks a rule, the exception is listed below with the
reason; an exception that no longer happens fails too, so the lists only ever shrink.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "scraper"

#: Each part of the package and its floor: a part may import its own floor or lower ones.
FLOORS: dict[str, int] = {
    "__main__": 3,
    "cli": 3,
    "api": 2,
    "serve": 2,  # the web front end: the library's read side behind HTTP
    "crawl": 1,
    "export": 1,
    "fetch": 1,
    "jobs": 1,
    "schema": 1,  # the store's tables and migrations (scraper/schema → ../schema)
    "sites": 1,
    "store": 1,
    "__init__": 0,  # scraper/__init__.py: the version
    "config": 0,
    "errors": 0,
    "fetched": 0,
    "jsontext": 0,  # the one JSON encoder of records, for parse and export
    "inputs": 0,  # input files checked before they are opened (FIFOs, devices, size)
    "interrupts": 0,  # a stop signal deferred to the end of the transaction in hand
    "records": 0,
}
BOTTOM = {part for part, floor in FLOORS.items() if floor == 0}

#: Parts that import the bottom floor only: a parser is testable from a file alone, and
#: the fetch layer (the only room that touches the network) knows nothing of the store.
BOTTOM_ONLY = {"sites", "fetch"}

#: What the CLI may call: the library's API and its web front end.
FRONT_DOORS = {"cli", "api", "serve"}

#: The CLI parses options, makes one api call and renders the result: it imports api and
#: the bottom floor only. A CLI module that must reach past api is named here, with why:
#: (module, part it imports) -> reason.
CLI_PAST_API: dict[tuple[str, str], str] = {}


#: Module import cycles (each as its sorted modules), with why they are still here.
MODULE_CYCLES: dict[tuple[str, ...], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package (the schema symlink followed), by dotted name."""
    found: dict[str, Path] = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for name in files:
            if name.endswith(".py"):
                found[module_name(Path(folder) / name)] = Path(folder) / name
    return found


MODULES = package_modules()


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The package modules ``module`` imports (resolved to modules), with their line."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from package import name` imports the submodule when there is one.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # `import scraper.x.y` → scraper.x.y
                name = name.rpartition(".")[0]
            if name.startswith("scraper") and name != module:
                yield name, node.lineno


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


@cache
def all_imports() -> dict[str, set[tuple[str, int]]]:
    """Each package module's imports (read once, when a test first asks)."""
    return {module: set(imported(module, path)) for module, path in MODULES.items()}


def edges() -> Iterator[tuple[str, str, int]]:
    for module, targets in sorted(all_imports().items()):
        for target, line in sorted(targets):
            yield module, target, line


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(REPO)}:{line}"


def test_every_part_of_the_package_has_a_floor() -> None:
    assert {part(module) for module in MODULES} == set(FLOORS)


def test_imports_point_down() -> None:
    upward = [
        f"{where(module, line)}: {module} imports {target}"
        for module, target, line in edges()
        if FLOORS[part(target)] > FLOORS[part(module)]
    ]
    assert upward == []


def test_sites_and_fetch_import_the_bottom_floor_only() -> None:
    wrong = [
        f"{where(module, line)}: {module} imports {target}"
        for module, target, line in edges()
        if part(module) in BOTTOM_ONLY and part(target) not in BOTTOM | {part(module)}
    ]
    assert wrong == []


def test_the_cli_goes_through_api() -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for module, target, line in edges():
        if part(module) in {"cli", "__main__"} and part(target) not in BOTTOM | FRONT_DOORS:
            seen.setdefault((module, part(target)), []).append(where(module, line))
    new = {key: lines for key, lines in seen.items() if key not in CLI_PAST_API}
    assert new == {}, "the CLI reaches past api: call the library through scraper.api"
    gone = sorted(set(CLI_PAST_API) - set(seen))
    assert gone == [], "no longer happens: remove it from CLI_PAST_API"


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_package_imports_another_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for module, target, _ in edges():
        if part(module) != part(target):
            graph.setdefault(part(module), set()).add(part(target))
    assert cycles(graph) == []


def test_no_module_cycles_beyond_the_known_ones() -> None:
    graph = {module: {target for target, _ in targets} for module, targets in all_imports().items()}
    # A package's __init__ re-exporting its own modules is not a cycle of the design.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(f"{t}.")}
    found = cycles(graph)
    assert [cycle for cycle in found if cycle not in MODULE_CYCLES] == []
    assert sorted(set(MODULE_CYCLES) - set(found)) == [], "gone: remove from MODULE_CYCLES"


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    # What the rules above rely on: imports in a function body, under TYPE_CHECKING,
    # relative ones and `from package import module` are all seen and resolved.
    source = tmp_path / "example.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import scraper.config\n"
        "if TYPE_CHECKING:\n"
        "    from scraper.records import Review\n"
        "def lazy() -> None:\n"
        "    from scraper import errors, fetch\n"
        "    from .. import api\n"
        "    from . import not_a_module\n",
        encoding="utf-8",
    )
    seen = {target for target, _ in imported("scraper.store.example", source)}
    assert seen == {
        "scraper.config",
        "scraper.records",
        "scraper.errors",
        "scraper.fetch",
        "scraper.api",
        "scraper.store",
    }
