"""Run by tests/test_ops_runs.py: one invariant that holds, or breaks when JC_FLAKY_FAIL is set
(a check that flips between runs: the history must name it flaky, never retry it).

Not collected by `pytest tests` (no test_ prefix).
"""

from __future__ import annotations

import os

import pytest

from plugins.contract.verdict import violated
from plugins.invariants import invariant

pytestmark = [pytest.mark.postdeploy, pytest.mark.nightly]


@invariant(
    "JC-FLAKY-01",
    title="an invariant that flips between runs",
    severity="critical",
    section="Health Checks",
    remedy="Find why it flips.",
)
def test_flips() -> None:
    if os.environ.get("JC_FLAKY_FAIL"):
        raise violated("the check was told to fail (JC_FLAKY_FAIL)")
