"""The check layer (issue 20): a check declares its tiers once, in its ``@invariant(tiers=…)``.

- ``-m postdeploy`` / ``nightly`` / ``premerge`` / ``runbook`` / ``mutates`` select exactly the
  checks recorded in tests/data/check_tiers.json (taken before the tiers moved into
  ``@invariant``): changing a check's tier is a decision made in that file too;
- no check module sets a ``pytestmark`` or a tier marker of its own;
- README's invariant table names the tiers the checks declare.

(That a check module never imports psycopg, fixtures.stack or fixtures.clients — it only
judges — is one of the layer rules of tests/test_layers.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_suite

TIERS = ("postdeploy", "nightly", "premerge", "runbook", "mutates")
RECORDED = ROOT / "tests" / "data" / "check_tiers.json"


@pytest.mark.parametrize("tier", TIERS)
def test_each_tier_selects_the_recorded_checks(tier: str, tmp_path: Path) -> None:
    run = run_suite("-m", tier, "--collect-only", paths=("checks",), reports=tmp_path / "reports")
    assert run.exitcode in (0, 5), run.output[-2000:]  # 5: nothing collected (no check mutates)
    selected = sorted(line.strip() for line in run.output.splitlines() if re.match(r"^checks/\S+::", line.strip()))
    assert selected == json.loads(RECORDED.read_text())[tier]


def _check_modules() -> list[Path]:
    return sorted((ROOT / "checks").glob("test_*.py"))


def test_tiers_are_declared_only_in_invariant() -> None:
    """No module-level ``pytestmark`` and no ``@pytest.mark.<tier>`` of its own: a check's
    tiers are the ``tiers=`` of its ``@invariant``, and every check declares some."""
    import ast
    import importlib

    wrong = []
    for path in _check_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "pytestmark":
                wrong.append(f"{path.name}:{node.lineno}: pytestmark")
            if isinstance(node, ast.Attribute) and node.attr in TIERS and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "mark":
                wrong.append(f"{path.name}:{node.lineno}: pytest.mark.{node.attr}")
        module = importlib.import_module(f"checks.{path.stem}")
        for name, obj in vars(module).items():
            marks = [m.name for m in getattr(obj, "pytestmark", [])] if callable(obj) else []
            if "invariant" in marks and not set(marks) & set(TIERS):
                wrong.append(f"{path.name}:{name}: no tiers=")
    assert wrong == []


def _declared_tiers() -> dict[str, set[str]]:
    import importlib

    found: dict[str, set[str]] = {}
    for path in _check_modules():
        module = importlib.import_module(f"checks.{path.stem}")
        for obj in vars(module).values():
            marks = getattr(obj, "pytestmark", []) if callable(obj) else []
            for inv in (m for m in marks if m.name == "invariant"):
                found[inv.args[0]] = {m.name for m in marks if m.name in TIERS}
    return found


def test_readme_tiers_agree_with_the_declarations() -> None:
    """README's invariant table names each row's tiers (``pd nt``; ``pd nt / nt`` for a row of
    two ids apart): what @invariant declares, never a third list of its own."""
    short = {"pd": "postdeploy", "nt": "nightly", "pm": "premerge", "rb": "runbook"}
    declared = _declared_tiers()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Invariants: what each check trusts, and what it refuses", 1)[1].split("\n## ", 1)[0]
    wrong = []
    rows = re.findall(r"^\| (JC-[A-Z]+-[0-9/…]+) \| [^|]* \| ([^|]*) \|", section, re.M)
    assert len(rows) > 20
    for row, column in rows:
        area, nums = row.rsplit("-", 1)
        if "…" in nums:
            lo, hi = nums.split("…")
            ids = [f"{area}-{n:02d}" for n in range(int(lo), int(hi) + 1)]
        else:
            ids = [f"{area}-{int(n):02d}" for n in nums.split("/")]
        groups = [{short[t] for t in g.split()} for g in column.split(" / ")]
        if len(groups) == 1:  # the row's tiers: those of all its ids together
            if groups[0] != set().union(*(declared.get(i, set()) for i in ids)):
                wrong.append(f"{row}: {column.strip()!r}")
        elif [declared.get(i) for i in ids] != groups:
            wrong.append(f"{row}: {column.strip()!r}")
    assert wrong == []
