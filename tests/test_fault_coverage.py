"""Every check proves it can fail: each invariant declared under checks/ is named by a
self-test that runs it against a real stack (not only by unit tests). A new check without
its fault test fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DECLARED = re.compile(r'@invariant\(\s*"(JC-[A-Z0-9]+-\d+)"')


def test_every_invariant_has_a_fault_self_test() -> None:
    declared = {m for path in (ROOT / "checks").glob("*.py") for m in _DECLARED.findall(path.read_text())}
    assert len(declared) > 40, "the invariants are declared with @invariant(\"JC-…\")"
    tests = " ".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py")
                     if not p.name.endswith("_units.py") and p.name != Path(__file__).name)
    missing = sorted(i for i in declared if i not in tests)
    assert missing == [], f"invariants no self-test names (add a fault that makes them fail): {missing}"


def test_only_tests_carry_an_invariant() -> None:
    """@invariant marks a check (a collected test function); on a helper it would declare an
    id no check enforces, and hide which function is the real check."""
    import importlib

    wrong = []
    for path in sorted((ROOT / "checks").glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        for name, obj in vars(module).items():
            marks = getattr(obj, "pytestmark", [])
            if callable(obj) and any(m.name == "invariant" for m in marks) and not name.startswith("test_"):
                wrong.append(f"{path.name}:{name}")
    assert wrong == []
