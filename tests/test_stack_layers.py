"""The local stack is a layer of its own: what judges production never imports it, and its own
modules import one another one way (issue 20). Read from the import statements of the code,
those inside functions included (fixtures/stack/images/app_files.py reads them)."""

from __future__ import annotations

from pathlib import Path

from fixtures.stack.images.app_files import _imported_names, module_file

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports_of_ours(path: Path) -> set[str]:
    """The modules of this repository an import statement of ``path`` names."""
    return {name for name in _imported_names(path, _module(path)) if module_file(name) is not None}


def test_checks_and_probes_never_import_the_stack() -> None:
    """The checks and the fixture layer (clients, probes, the migration convention) run against
    production too: none of them loads the local stack."""
    fixtures = [p for p in sorted((ROOT / "fixtures").rglob("*.py")) if "stack" not in p.relative_to(ROOT).parts]
    paths = [*sorted((ROOT / "checks").glob("*.py")), *fixtures]
    assert ROOT / "fixtures" / "probes" / "runtime" / "jobs.py" in paths  # the probe packages are read too
    offenders = {p.relative_to(ROOT).as_posix(): sorted(n for n in _imports_of_ours(p) if n.startswith("fixtures.stack"))
                 for p in paths}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_stack_has_no_import_cycle() -> None:
    """One way: the launcher → backends → their shared base and services → the database, seed
    and app environment → the reference app; nothing imports back up (the containers backend
    once imported the launcher it is made by)."""
    graph = {_module(p): {n for n in _imports_of_ours(p) if n.startswith("fixtures.stack") and n != _module(p)}
             for p in sorted((ROOT / "fixtures" / "stack").rglob("*.py"))}
    packages = {name for name in graph if (ROOT.joinpath(*name.split(".")) / "__init__.py").is_file()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph.get(name, set()) - packages):
            if state.get(dep) == "open":
                raise AssertionError("import cycle: " + " → ".join([*path[path.index(dep):], dep]))
            if dep not in state:
                visit(dep, [*path, dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_backends_do_not_import_one_another() -> None:
    """One file per backend: what two backends share lives in backends/base.py or below it."""
    backends = sorted((ROOT / "fixtures" / "stack" / "backends").glob("*.py"))
    for path in backends:
        others = {f"fixtures.stack.backends.{p.stem}" for p in backends
                  if p.stem not in ("base", "__init__", path.stem)}
        assert _imports_of_ours(path) & others == set(), path.name
    launcher = _imports_of_ours(ROOT / "fixtures" / "stack" / "launcher.py")
    assert not {n for p in backends for n in _imports_of_ours(p)} & {"fixtures.stack.launcher"}
    assert {"fixtures.stack.backends.native", "fixtures.stack.backends.existing",
            "fixtures.stack.backends.containers"} <= launcher
