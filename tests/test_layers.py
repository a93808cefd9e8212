"""The layers' rules (README "Layout"), read from the import graph of checks/, fixtures/ and
plugins/ with ast: every ``import`` counts, also one inside a function or under
``TYPE_CHECKING`` — a lazy import is still a dependency.

- plugins.contract imports nothing of ours outside itself, and nothing of pytest;
- fixtures import, of plugins, only plugins.contract;
- the probes (fixtures/probes*) never reach fixtures.stack, directly or through another module;
- checks import neither psycopg nor fixtures.stack nor fixtures.clients;
- no import cycle among our modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("checks", "fixtures", "plugins")
PYTEST = ("pytest", "_pytest", "pluggy", "xdist")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _resolve(name: str) -> str:
    """The module of ours a dotted name lives in (its longest known prefix), else the name."""
    modules = _modules()
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return name


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module ``module`` imports (ours resolved to a module, others as written)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                yield _resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in _modules() else _resolve(base)


@cache
def graph() -> dict[str, frozenset[str]]:
    """Each module of ours -> every module it imports (ours and third-party)."""
    return {m: frozenset(_imported(m, p)) - {m} for m, p in _modules().items()}


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _edges(sources: str, rule: object) -> list[str]:
    """``module -> imported`` for each import of a module under ``sources`` that breaks ``rule``."""
    return sorted(f"{m} -> {t}" for m, targets in graph().items() if _within(m, sources)
                  for t in targets if rule(t))  # type: ignore[operator]


def _reach(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for t in graph().get(todo.pop(), ()):
            if _ours(t) and t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def _cycles() -> list[list[str]]:
    """The import cycles (strongly connected components of two or more modules) among our modules."""
    nodes = list(graph())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph()[v]:
            if w not in graph():
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_is_read() -> None:
    """The reader sees what it must: the contract, the probes, the hook modules, lazy imports."""
    g = graph()
    assert {"plugins.contract.runbook", "plugins.contract.verdict", "fixtures.probes.health.deep", "checks.test_health",
            "plugins.target"} <= set(g)
    assert "plugins.contract.toml_schema" in g["plugins.contract.runbook"]
    assert "fixtures.stack.launcher" in g["plugins.target"]  # imported inside functions


def test_the_contract_is_a_leaf() -> None:
    """plugins.contract imports nothing of ours outside itself, and no pytest."""
    assert _edges("plugins.contract", lambda t: _ours(t) and not _within(t, "plugins.contract")) == []
    assert _edges("plugins.contract", lambda t: t.split(".")[0] in PYTEST) == []


def test_fixtures_import_only_the_contract_of_plugins() -> None:
    """What the target is reached with depends on the contract, never on a hook module (the
    hook modules hand fixtures.connections what they own as fixtures, by name)."""
    assert _edges("fixtures", lambda t: _within(t, "plugins") and not _within(t, "plugins.contract")) == []


def _probe_modules() -> list[str]:
    return sorted(m for m in graph() if m == "fixtures.probes" or m.startswith("fixtures.probes."))


def test_probes_never_reach_the_stack() -> None:
    """The production probe layer does not depend on the local stack, even through another module."""
    assert _probe_modules()
    reached = {m: sorted(t for t in _reach(m) if _within(t, "fixtures.stack")) for m in _probe_modules()}
    assert {m: ts for m, ts in reached.items() if ts} == {}


@pytest.mark.parametrize("forbidden", ["psycopg", "fixtures.stack", "fixtures.clients"])
def test_checks_only_judge(forbidden: str) -> None:
    """A check reaches the target through fixtures and probes: no driver, no stack, no client."""
    assert _edges("checks", lambda t: _within(t, forbidden)) == []


def test_no_import_cycle() -> None:
    assert _cycles() == []
