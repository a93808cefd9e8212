"""Every check proves it can fail: each invariant declared under checks/ is named by a
self-test that runs it against a real stack (not only by unit tests). A new check without
its fault test fails here, naming it. The declared invariants are read from the registry
@invariant fills as the check modules are imported — however a declaration is written."""

from __future__ import annotations

import importlib
from pathlib import Path

from plugins.contract.verdict import registry

ROOT = Path(__file__).resolve().parents[1]


def declared_invariants() -> set[str]:
    """Every invariant id the check modules declare: importing them fills the registry. Only
    the ids a check of checks/ carries count (a self-test's probe modules, imported in the
    same process, declare invariants of their own)."""
    carried = set()
    for path in sorted((ROOT / "checks").glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        carried |= {m.args[0] for obj in vars(module).values() if callable(obj)
                    for m in getattr(obj, "pytestmark", []) if m.name == "invariant"}
    declared = registry()
    assert carried <= set(declared), "a check carries an invariant id @invariant did not register"
    return {i for i in declared if i in carried}


def test_every_invariant_has_a_fault_self_test() -> None:
    declared = declared_invariants()
    assert len(declared) > 40, "the invariants are declared with @invariant(\"JC-…\")"
    assert {f"JC-DEEP-{n:02d}" for n in range(1, 9)} <= declared
    tests = " ".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py")
                     if not p.name.endswith("_units.py") and p.name != Path(__file__).name)
    missing = sorted(i for i in declared if i not in tests)
    assert missing == [], f"invariants no self-test names (add a fault that makes them fail): {missing}"


def test_only_tests_carry_an_invariant() -> None:
    """@invariant marks a check (a collected test function); on a helper it would declare an
    id no check enforces, and hide which function is the real check."""
    wrong = []
    for path in sorted((ROOT / "checks").glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        for name, obj in vars(module).items():
            marks = getattr(obj, "pytestmark", [])
            if callable(obj) and any(m.name == "invariant" for m in marks) and not name.startswith("test_"):
                wrong.append(f"{path.name}:{name}")
    assert wrong == []
