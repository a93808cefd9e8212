"""The check layer (issue 20): a check holds only its judgement, and declares its tiers once.

- ``-m postdeploy`` / ``nightly`` / ``premerge`` / ``runbook`` / ``mutates`` select exactly the
  checks recorded in tests/data/check_tiers.json (taken before the tiers moved into
  ``@invariant``): changing a check's tier is a decision made in that file too.
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
