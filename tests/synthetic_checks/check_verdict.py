"""Run by tests/test_verdict.py and tests/test_lifecycle.py: the verdict of a run whose
invariants did not all pass. JC-VERDICT-01 passes; JC-VERDICT-02 is skipped (undecided), or
fails when JC_VERDICT_FAIL is set.

Not collected by `pytest tests` (no test_ prefix).
"""

from __future__ import annotations

import os

import pytest

from plugins.contract.verdict import violated
from plugins.invariants import invariant

pytestmark = [pytest.mark.postdeploy, pytest.mark.nightly]


@invariant(
    "JC-VERDICT-01",
    title="an invariant that holds",
    severity="normal",
    section="Health Checks",
    remedy="Nothing to do.",
)
def test_holds() -> None:
    pass


@invariant(
    "JC-VERDICT-02",
    title="an invariant left undecided",
    severity="normal",
    section="Health Checks",
    remedy="Decide it.",
)
def test_undecided() -> None:
    if os.environ.get("JC_VERDICT_FAIL"):
        raise violated("the check was told to fail (JC_VERDICT_FAIL)")
    pytest.skip("the check cannot decide (skipped on purpose)")
